/*
 * Inside the control API: one request as a handler sees it. The server
 * (server/api.c) parses and validates the request against the route table,
 * calls the handler, and sends what the handler left in status and reply.
 * The table is in server/api_vm.c, the handlers there and in api_fork.c and
 * api_snapshot.c.
 */
#ifndef SERVER_API_CALL_H
#define SERVER_API_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm;

struct api_call {
	struct vmm *vmm;
	uint64_t id;                /* the path's {id} */
	json_t *args;               /* the body's object (only keys the route allows), or NULL */
	unsigned status;            /* HTTP status of the answer */
	json_t *reply;              /* its body; NULL: none (204) */
};

struct api_route {
	const char *method;
	const char *pattern;        /* a "{id}" segment holds a decimal VM id */
	void (*handler)(struct api_call *c);
	const char *const *fields;  /* keys the body may have, NULL-terminated; NULL: none */
};

extern const struct api_route api_routes[];

/* The VM the path names, referenced; NULL with a 404 when there is none (server/api_vm.c). */
struct vm *api_call_vm(struct api_call *c);

/* Fork endpoints and clones in other processes (server/api_fork.c). */
extern const char *const api_fork_fields[];
void api_h_fork(struct api_call *c);
/* Those clones, as GET /v1/vms lists them beside the VMs; one of them, or NULL. */
json_t *api_proc_clones_json(struct vmm *vmm);
json_t *api_proc_clone_json(struct vmm *vmm, uint64_t id);
/* Stop the process clone the path names; false when there is none (then nothing was answered). */
bool api_stop_proc_clone(struct api_call *c);

/* Snapshot endpoints (server/api_snapshot.c). */
extern const char *const api_snapshot_fields[];
void api_h_snapshot(struct api_call *c);
void api_h_snapshot_job(struct api_call *c);
/* server/api_limits.c */
extern const char *const api_limits_fields[];
void api_h_get_limits(struct api_call *c);
void api_h_set_limits(struct api_call *c);
extern const size_t api_nroutes;

/* Answer with body (reference stolen; NULL from a failed json_pack() becomes a 500). */
void api_reply(struct api_call *c, unsigned status, json_t *body);
/* Answer {"error": message}. */
void api_error(struct api_call *c, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* s (at most max bytes) as a JSON string; bytes that are not UTF-8 become '?'. */
json_t *api_json_text(const char *s, size_t max);

#endif
