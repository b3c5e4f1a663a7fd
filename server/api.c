/*
 * The control API server (server/api.h): libmicrohttpd serving a Unix socket we
 * create ourselves, jansson for the JSON. It reads a request, matches it
 * against the route table (server/api_vm.c), checks the body against the
 * route's fields, and sends what the handler answers (server/api_call.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <time.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "server/api.h"
#include "server/api_call.h"

#define API_MAX_CONNECTIONS 64u
#define API_MAX_CONNECTIONS_THREADED 1024u /* with an extension: a thread each */
#define API_IDLE_TIMEOUT_S 10u /* an unfinished request is dropped after this */

struct api_server {
	struct MHD_Daemon *daemon;
	struct MHD_Daemon *tcp;     /* the extension's routes on loopback TCP, or NULL */
	struct vmm *vmm;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;                  /* the socket file we made: stop removes only that one */
	ino_t ino;
	struct api_extension ext;   /* .serve NULL: none */
	pthread_mutex_t control;    /* with an extension, control requests still go one at a time */
};

/* One request on the wire: its body as it arrives, then the handler's answer. */
struct api_request {
	struct api_call call;
	char *body;
	size_t len, cap;
	bool too_big, no_mem;
	bool extended;              /* the extension serves it */
	bool over_tcp;              /* from the TCP listener: no control routes */
	size_t max_body;
	char allow[64];             /* the Allow header of a 405 */
};

json_t *api_json_text(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j)
		return j;
	copy = strndup(s, n);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void api_reply(struct api_call *c, unsigned status, json_t *body)
{
	json_decref(c->reply);
	c->status = status;
	c->reply = body;
}

void api_error(struct api_call *c, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_reply(c, status, json_pack("{s:o}", "error", api_json_text(msg, sizeof(msg))));
}

/* ---- Routing ---- */

/* Does path fit pattern? The "{id}" segment, if any, is returned in seg/seg_len. */
static bool path_matches(const char *pattern, const char *path, const char **seg, size_t *seg_len)
{
	while (*pattern && *path) {
		if (!strncmp(pattern, "{id}", 4)) {
			*seg = path;
			*seg_len = strcspn(path, "/");
			if (!*seg_len)
				return false;
			pattern += 4;
			path += *seg_len;
		} else if (*pattern++ != *path++) {
			return false;
		}
	}
	return !*pattern && !*path;
}

static int parse_id(const char *s, size_t len, uint64_t *id)
{
	uint64_t v = 0;

	if (!len || len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*id = v;
	return 0;
}

static bool field_allowed(const char *const *fields, const char *key)
{
	for (; fields && *fields; fields++)
		if (!strcmp(*fields, key))
			return true;
	return false;
}

static int parse_args(struct api_request *rq, const struct api_route *r)
{
	struct api_call *c = &rq->call;
	json_error_t err;
	const char *key;
	json_t *v;

	if (!rq->len)
		return 0;
	c->args = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &err);
	if (!c->args) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "the body is not valid JSON: %s (at byte %d)",
			  err.text, err.position);
		return -EINVAL;
	}
	if (!json_is_object(c->args)) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
		return -EINVAL;
	}
	json_object_foreach(c->args, key, v) {
		if (!field_allowed(r->fields, key)) {
			api_error(c, MHD_HTTP_BAD_REQUEST, "unknown field \"%s\"%s", key,
				  r->fields ? "" : ": this endpoint takes no arguments");
			return -EINVAL;
		}
	}
	return 0;
}

static void dispatch(struct api_request *rq, const char *method, const char *url)
{
	const struct api_route *route = NULL;
	struct api_call *c = &rq->call;
	char *allow = rq->allow;
	const char *seg = NULL;
	size_t seg_len = 0;

	for (size_t i = 0; i < api_nroutes; i++) {
		if (!path_matches(api_routes[i].pattern, url, &seg, &seg_len))
			continue;
		snprintf(allow + strlen(allow), sizeof(rq->allow) - strlen(allow), "%s%s",
			 allow[0] ? ", " : "", api_routes[i].method);
		if (!strcmp(api_routes[i].method, method))
			route = &api_routes[i];
	}
	if (!allow[0])
		api_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", url);
	else if (!route)
		api_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %s (allowed: %s)",
			  method, url, allow);
	else if (seg && parse_id(seg, seg_len, &c->id))
		api_error(c, MHD_HTTP_BAD_REQUEST, "'%.*s' is not a VM id", (int)seg_len, seg);
	else if (!parse_args(rq, route))
		route->handler(c);
}

/* ---- HTTP plumbing ---- */

static struct MHD_Response *reply_response(struct api_call *c)
{
	static char no_mem[] = "{\"error\":\"out of memory\"}\n";
	char *text = c->reply ? json_dumps(c->reply, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;
	struct MHD_Response *resp;
	char *nl;

	if (!text && c->status == MHD_HTTP_NO_CONTENT)
		return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!text) { /* json_pack() or json_dumps() ran out of memory */
		c->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return MHD_create_response_from_buffer(strlen(no_mem), no_mem,
						       MHD_RESPMEM_PERSISTENT);
	}
	nl = realloc(text, len + 2); /* end with a newline, for curl in a terminal */
	if (nl) {
		text = nl;
		memcpy(text + len++, "\n", 2);
	}
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(text);
	return resp;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct api_request *rq)
{
	struct MHD_Response *resp = reply_response(&rq->call);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	if (rq->call.status != MHD_HTTP_NO_CONTENT)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (rq->call.status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rq->allow);
	ret = MHD_queue_response(conn, rq->call.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void take_body(struct api_request *rq, const char *data, size_t n)
{
	char *grown;

	if (rq->too_big || rq->no_mem)
		return;
	if (n > rq->max_body - rq->len) {
		rq->too_big = true;
		return;
	}
	if (rq->len + n > rq->cap) {
		size_t cap = rq->cap * 2 > rq->len + n ? rq->cap * 2 : rq->len + n;

		grown = realloc(rq->body, cap);
		if (!grown) {
			rq->no_mem = true;
			return;
		}
		rq->body = grown;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
}

static bool declared_too_big(struct MHD_Connection *conn, size_t max)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	return cl && strtoull(cl, NULL, 10) > max;
}

static enum MHD_Result send_raw(struct MHD_Connection *conn, struct api_raw_reply *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(r->len, r->body,
								    MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->content_type ? r->content_type : "application/octet-stream");
	for (unsigned i = 0; i < API_RAW_HEADERS && r->header_names[i]; i++)
		MHD_add_response_header(resp, r->header_names[i], r->header_values[i]);
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The request's body is in: the extension's or the control routes' answer. */
static enum MHD_Result answer(struct api_server *s, struct MHD_Connection *conn,
			      struct api_request *rq, const char *method, const char *url)
{
	struct api_raw_reply raw = { .status = MHD_HTTP_INTERNAL_SERVER_ERROR };

	if (rq->too_big) {
		api_error(&rq->call, MHD_HTTP_CONTENT_TOO_LARGE, "the body is larger than %zu bytes",
			  rq->max_body);
	} else if (rq->no_mem) {
		api_error(&rq->call, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	} else if (rq->extended) {
		s->ext.serve(s->ext.ctx, method, url, rq->body ? rq->body : "", rq->len, &raw);
		return send_raw(conn, &raw);
	} else if (rq->over_tcp) {
		api_error(&rq->call, MHD_HTTP_FORBIDDEN,
			  "the control API is only on the Unix socket %s", s->path);
	} else {
		pthread_mutex_lock(&s->control);
		dispatch(rq, method, url);
		pthread_mutex_unlock(&s->control);
	}
	return send_reply(conn, rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct api_request *rq = *con_cls;

	if (!rq) { /* the headers are in; the body, if any, follows */
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->call.vmm = s->vmm;
		*con_cls = rq;
		rq->over_tcp = s->tcp && MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON)
						 ->daemon == s->tcp;
		rq->extended = s->ext.serve && s->ext.claims(s->ext.ctx, method, url);
		rq->max_body = rq->extended ? s->ext.max_body : API_MAX_BODY;
		rq->too_big = declared_too_big(conn, rq->max_body);
		if (!rq->too_big) /* else refuse now, before reading it */
			return MHD_YES;
	} else if (*data_size) {
		take_body(rq, data, *data_size);
		*data_size = 0;
		return MHD_YES;
	}
	return answer(s, conn, rq, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_request *rq = *con_cls;

	if (!rq)
		return;
	json_decref(rq->call.args);
	json_decref(rq->call.reply);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pr_debug("api: %s", msg);
}

/* ---- The socket ---- */

static int unix_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* A socket file nobody listens on is left from a VMM that died: remove it. */
static int clear_stale_socket(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, ret;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Connected or a full backlog (EAGAIN): someone is there. */
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : -EADDRINUSE;
	close(fd);
	if (ret == -EAGAIN)
		ret = -EADDRINUSE;
	if (ret == -ECONNREFUSED && unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return ret == -ECONNREFUSED || ret == -ENOENT ? 0 : ret;
}

static int listen_unix(struct api_server *s)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, ret = unix_addr(&sa, s->path);

	if (!ret)
		ret = clear_stale_socket(&sa);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Only our user may drive the VMs; nobody can connect before listen(). */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(s->path, 0600) < 0 ||
	    stat(s->path, &st) < 0 || listen(fd, 32) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return fd;
}

static void remove_socket_file(struct api_server *s)
{
	struct stat st;

	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
}

/* An HTTP server of s's routes on the listening socket fd, which it owns from here. */
static struct MHD_Daemon *start_mhd(struct api_server *s, int fd, unsigned flags,
				    unsigned max_connections)
{
	return MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, s,
				MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
				max_connections, MHD_OPTION_CONNECTION_TIMEOUT, API_IDLE_TIMEOUT_S,
				MHD_OPTION_END);
}

int api_server_start(struct api_server **out, struct vmm *vmm, const char *socket_path)
{
	return api_server_start_extended(out, vmm, socket_path, NULL);
}

int api_server_start_extended(struct api_server **out, struct vmm *vmm, const char *socket_path,
			      const struct api_extension *ext)
{
	struct api_server *s = calloc(1, sizeof(*s));
	unsigned flags = ext ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD :
			       MHD_USE_AUTO_INTERNAL_THREAD;
	int fd;

	if (!s)
		return -ENOMEM;
	s->vmm = vmm;
	if (ext)
		s->ext = *ext;
	pthread_mutex_init(&s->control, NULL);
	snprintf(s->path, sizeof(s->path), "%s", socket_path);
	fd = strlen(socket_path) < sizeof(s->path) ? listen_unix(s) : -ENAMETOOLONG;
	if (fd < 0) {
		pr_debug("api: cannot listen on %s: %s", socket_path, strerror(-fd));
		free(s);
		return fd;
	}
	/* MHD owns fd from here: MHD_stop_daemon() closes it. */
	s->daemon = start_mhd(s, fd, flags,
			      ext ? API_MAX_CONNECTIONS_THREADED : API_MAX_CONNECTIONS);
	if (!s->daemon) {
		pr_err("api: cannot start the HTTP server on %s", socket_path);
		close(fd);
		remove_socket_file(s);
		free(s);
		return -EIO;
	}
	*out = s;
	return 0;
}

/* ---- Loopback TCP ---- */

int api_loopback_addr(const char *addr, struct sockaddr_storage *sa, socklen_t *len)
{
	const char *colon = strrchr(addr, ':');
	char host[64], *end;
	unsigned long port;
	size_t n;

	if (!colon || colon == addr || (n = (size_t)(colon - addr)) >= sizeof(host))
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port > 65535)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	memset(sa, 0, sizeof(*sa));
	if (host[0] == '[' && host[n - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;

		host[n - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 &&
		       IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr) ? 0 : -EINVAL;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;

	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	/* 127.0.0.0/8 */
	return inet_pton(AF_INET, host, &a4->sin_addr) == 1 &&
	       (ntohl(a4->sin_addr.s_addr) >> 24) == 127 ? 0 : -EINVAL;
}

static int listen_tcp(const char *addr, unsigned *port)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int one = 1, fd, ret = api_loopback_addr(addr, &sa, &len);

	if (ret < 0)
		return ret;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port :
						 ((struct sockaddr_in *)&sa)->sin_port);
	return fd;
}

int api_server_listen_tcp(struct api_server *s, const char *addr, unsigned *port)
{
	int fd = s->tcp || !s->ext.serve ? -EBUSY : listen_tcp(addr, port);

	if (fd < 0)
		return fd;
	/* MHD owns fd from here, as the Unix socket's. */
	s->tcp = start_mhd(s, fd, MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
			   API_MAX_CONNECTIONS_THREADED);
	if (!s->tcp) {
		close(fd);
		return -EIO;
	}
	return 0;
}

/* Let a request in flight (say, the stop that ended the last VM) get its answer. */
static void drain(struct MHD_Daemon *d)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	MHD_quiesce_daemon(d);
	for (int i = 0; i < 100; i++) {
		const union MHD_DaemonInfo *info =
			MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

		if (!info || info->num_connections == 0)
			break;
		nanosleep(&tick, NULL);
	}
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	if (s->tcp) {
		drain(s->tcp);
		MHD_stop_daemon(s->tcp);
	}
	drain(s->daemon);
	MHD_stop_daemon(s->daemon);
	remove_socket_file(s);
	pthread_mutex_destroy(&s->control);
	free(s);
}
