/* A minimal QMP client: newline-delimited JSON over a Unix socket. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "tools/bench/qmp.h"

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 0 : (int)((deadline - now) / 1000000 + 1);
}

/* Has QEMU exited (and been reaped here)? */
static bool qemu_gone(struct qmp *q)
{
	int status;

	if (q->pid <= 0 || waitpid(q->pid, &status, WNOHANG) != q->pid)
		return false;
	q->pid = -1;
	return true;
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	close(fd);
	return -errno;
}

/* Parse and remove the first complete line of the buffer; NULL if none. */
static json_t *take_line(struct qmp *q)
{
	char *nl = memchr(q->buf, '\n', q->len);
	size_t used;
	json_t *msg;

	if (!nl)
		return NULL;
	used = (size_t)(nl - q->buf) + 1;
	msg = json_loadb(q->buf, used, 0, NULL);
	memmove(q->buf, q->buf + used, q->len - used);
	q->len -= used;
	return msg ? msg : json_null();
}

static void note_event(struct qmp *q, json_t *msg)
{
	const char *ev = json_string_value(json_object_get(msg, "event"));
	const char *st;

	if (!ev || strcmp(ev, "MIGRATION"))
		return;
	st = json_string_value(json_object_get(json_object_get(msg, "data"), "status"));
	if (st)
		snprintf(q->migration, sizeof(q->migration), "%s", st);
}

/* Next message (events are noted on the way), or NULL with *err set. */
static json_t *read_msg(struct qmp *q, uint64_t deadline, int *err)
{
	for (;;) {
		json_t *msg = take_line(q);
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		ssize_t n;

		if (msg) {
			note_event(q, msg);
			return msg;
		}
		if (q->len == sizeof(q->buf)) {
			*err = -EMSGSIZE;
			return NULL;
		}
		n = poll(&pfd, 1, remaining_ms(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n ? -errno : -ETIMEDOUT;
			return NULL;
		}
		n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n <= 0) {
			*err = n ? -errno : -ECONNRESET;
			return NULL;
		}
		q->len += (size_t)n;
	}
}

static int send_cmd(struct qmp *q, const char *cmd, json_t *args)
{
	json_t *m = json_pack("{s:s}", "execute", cmd);
	char *text;
	size_t len, off = 0;
	int ret = 0;

	if (m && args)
		json_object_set_new(m, "arguments", args);
	else if (args)
		json_decref(args);
	text = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	while (off < len && !ret) {
		ssize_t n = send(q->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno != EINTR)
			ret = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (!ret && send(q->fd, "\n", 1, MSG_NOSIGNAL) != 1)
		ret = -errno;
	free(text);
	return ret;
}

int qmp_query(struct qmp *q, const char *cmd, json_t **ret, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
	int err = send_cmd(q, cmd, NULL);

	*ret = NULL;
	while (!err) {
		json_t *msg = read_msg(q, deadline, &err);

		if (!msg)
			break;
		if (json_object_get(msg, "error")) {
			err = -EPROTO;
		} else if (json_object_get(msg, "return")) {
			*ret = json_incref(json_object_get(msg, "return"));
			json_decref(msg);
			return 0;
		}
		json_decref(msg);
	}
	return err;
}

int qmp_cmd(struct qmp *q, const char *cmd, json_t *args, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
	int err = send_cmd(q, cmd, args);

	while (!err) {
		json_t *msg = read_msg(q, deadline, &err);
		bool done = msg && (json_object_get(msg, "return") || json_object_get(msg, "error"));

		if (msg && json_object_get(msg, "error"))
			err = -EPROTO;
		json_decref(msg);
		if (done)
			break;
	}
	return err;
}

static int read_greeting(struct qmp *q, uint64_t deadline)
{
	int err = 0;
	json_t *msg = read_msg(q, deadline, &err);
	bool ok = msg && json_object_get(msg, "QMP");

	json_decref(msg);
	return ok ? 0 : (err ? err : -EPROTO);
}

int qmp_open(struct qmp *q, const char *path, pid_t pid, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
	int ret;

	memset(q, 0, sizeof(*q));
	q->pid = pid;
	for (;;) {
		q->fd = try_connect(path);
		if (q->fd >= 0)
			break;
		if (q->fd != -ENOENT && q->fd != -ECONNREFUSED)
			return q->fd;
		if (qemu_gone(q))
			return -ECHILD;
		if (!remaining_ms(deadline))
			return -ETIMEDOUT;
		usleep(100);
	}
	ret = read_greeting(q, deadline);
	if (!ret)
		ret = qmp_cmd(q, "qmp_capabilities", NULL, timeout_ms);
	if (ret < 0)
		qmp_close(q);
	return ret;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

int qmp_migration_events(struct qmp *q)
{
	json_t *args = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "events",
				 "state", 1);

	return args ? qmp_cmd(q, "migrate-set-capabilities", args, 5000) : -ENOMEM;
}

int qmp_wait_migration(struct qmp *q, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
	int err = 0;

	for (;;) {
		json_t *msg;

		if (!strcmp(q->migration, "completed"))
			return 0;
		if (!strcmp(q->migration, "failed") || !strcmp(q->migration, "cancelled"))
			return -EIO;
		msg = read_msg(q, deadline, &err);
		if (!msg)
			return err;
		json_decref(msg);
	}
}

bool qmp_running(struct qmp *q)
{
	json_t *ret = NULL;
	bool running = qmp_query(q, "query-status", &ret, 5000) == 0 &&
		       json_is_true(json_object_get(ret, "running"));

	json_decref(ret);
	return running;
}

int qmp_migrate(struct qmp *q, const char *cmd, const char *uri, unsigned timeout_ms)
{
	json_t *args;
	int ret = qmp_migration_events(q);

	if (ret < 0)
		return ret;
	args = json_pack("{s:s}", "uri", uri);
	if (!args)
		return -ENOMEM;
	ret = qmp_cmd(q, cmd, args, 10000);
	return ret < 0 ? ret : qmp_wait_migration(q, timeout_ms);
}

void qemu_exec_child(const char *const argv[], const char *err_path)
{
	int null = open("/dev/null", O_RDWR);
	int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
	}
	if (err >= 0)
		dup2(err, STDERR_FILENO);
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}
