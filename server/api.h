/*
 * The control API: REST with JSON bodies over a Unix stream socket, in the
 * style of Firecracker and Cloud Hypervisor, so that
 *   curl --unix-socket PATH http://localhost/v1/vms
 * works. Every VM of one struct vmm is reachable by its id.
 *
 *   GET    /v1/info               {"version", "api", "vms"}
 *   GET    /v1/vms                {"vms": [VM, ...]}
 *   GET    /v1/vms/{id}           VM
 *   PUT    /v1/vms/{id}/pause     VM; 409 unless running
 *   PUT    /v1/vms/{id}/resume    VM; 409 unless paused
 *   PUT    /v1/vms/{id}/fork      {"count": 1..FORK_MAX_COUNT, "start": bool,
 *                                  "resume_parent": bool}, all optional
 *                                  -> {"parent", "children": [{"id", "console"}],
 *                                      "stats": {...}}; 409 when the parent is stopped
 *   PUT    /v1/vms/{id}/stop      VM, after waiting up to ~1 s for it to stop
 *   DELETE /v1/vms/{id}           204: stopped and unregistered
 *
 * VM: {"id", "parent_id", "generation", "child_index", "state" (created,
 * running, paused, stopped), "stop_reason" and "exit_status" (when stopped),
 * "cpus", "mem_bytes", "console"}.
 *
 * Errors are {"error": "message"} with 400 (bad body or id), 404 (no such VM
 * or path), 405 (method), 409 (state), 413 (body over API_MAX_BODY) or 500.
 * Request bodies, where an endpoint takes none, may be empty or {}.
 * Requests are served one at a time by one thread: a fork or a stop holds
 * the others back, and operations on one VM never race each other.
 */
#ifndef SERVER_API_H
#define SERVER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define API_MAX_BODY (64 * 1024)

struct api_server;
struct vmm;

/*
 * Listen on a new Unix socket at socket_path (mode 0600) and serve vmm until
 * api_server_stop(). A stale socket file is replaced; -EADDRINUSE when a live
 * process listens there, -EEXIST when the path is something other than a
 * socket, -ENAMETOOLONG when it does not fit a sockaddr_un.
 */
int api_server_start(struct api_server **out, struct vmm *vmm, const char *socket_path);
/*
 * Routes served beside the control API on the same socket (the functions
 * and metrics of `vm-fork serve`): raw bodies in and out, and served
 * concurrently, a thread per connection, while the control routes still go
 * one at a time.
 */
#define API_RAW_HEADERS 2
struct api_raw_reply {
	unsigned status;
	char *body;                 /* malloc'd; the server frees it */
	size_t len;
	const char *content_type;   /* NULL: application/octet-stream */
	const char *header_names[API_RAW_HEADERS];  /* more headers; unused ones NULL */
	char header_values[API_RAW_HEADERS][128];
};
struct api_extension {
	void *ctx;
	size_t max_body;            /* bytes of a request's body it takes */
	bool (*claims)(void *ctx, const char *method, const char *url);
	void (*serve)(void *ctx, const char *method, const char *url, const char *body,
		      size_t len, struct api_raw_reply *out);
};
/* api_server_start() with ext's routes too (ext is copied; NULL: none). */
int api_server_start_extended(struct api_server **out, struct vmm *vmm, const char *socket_path,
			      const struct api_extension *ext);
/*
 * Also serve the extension's routes, and only those, on TCP at addr:
 * "127.0.0.1:PORT" or "[::1]:PORT" (port 0: any free one), loopback only, as
 * nothing there says who calls. The control API stays on the Unix socket,
 * which only our user may reach: over TCP its routes are answered 403.
 * 0 with the port bound in *port, or -errno (-EINVAL: not a loopback address).
 */
int api_server_listen_tcp(struct api_server *s, const char *addr, unsigned *port);
/* addr as api_server_listen_tcp() takes it into *sa (and *len): 0 or -EINVAL. */
int api_loopback_addr(const char *addr, struct sockaddr_storage *sa, socklen_t *len);
/* Finish the request in progress, close every connection, remove the socket file. NULL is ok. */
void api_server_stop(struct api_server *s);

#endif
