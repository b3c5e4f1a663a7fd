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
/* Finish the request in progress, close every connection, remove the socket file. NULL is ok. */
void api_server_stop(struct api_server *s);

#endif
