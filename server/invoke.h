/*
 * One invocation of a function (the serverless pool): a clone of the paused
 * template, forked for it or taken warm from the pool, runs; the body goes
 * to the clone's vsock service (server/vsock_call.h); its answer comes back;
 * the clone is removed whatever happened. A clone serves one request and
 * never another: nothing of one request can reach the next.
 */
#ifndef SERVER_INVOKE_H
#define SERVER_INVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct clone_cgroups;
struct device_config;
struct proc_pool;
struct vm;

struct invoke_request {
	struct vm *template;       /* paused, registered in its vmm, with vsock on */
	const struct device_config *devices; /* each clone's backends (fork_request), or NULL */
	unsigned port;             /* the guest's function port */
	const void *body;
	size_t len;
	unsigned timeout_ms;
	size_t max_answer;
	bool measure_private;      /* count the clone's own pages before it goes */
};

struct invoke_result {
	uint64_t clone_id;
	char *answer;              /* malloc'd, NUL-terminated; NULL on failure */
	size_t len;
	uint64_t fork_ns;          /* the fork, or taking a warm clone: the clone runs */
	uint64_t deliver_ns;       /* from then until the body was sent */
	uint64_t answer_ns;        /* from then to the answer's end */
	uint64_t private_bytes;    /* the clone's own pages at its end (measure_private) */
	int stage_failed;          /* 0, or INVOKE_FORK / INVOKE_ANSWER: where the error came from */
	bool over_memory;          /* the kernel ended the clone at its cgroup's memory.max */
};

enum { INVOKE_FORK = 1, INVOKE_ANSWER = 2 };

/* The VM's own vsock socket (its "%u" made the VM's id), "" when it has no vsock on. */
const char *invoke_vsock_path(struct vm *vm);

/*
 * Fork one paused clone of rq->template for later: returned referenced in
 * *clone (vmm_put() it). 0 or the fork's errno (-EDQUOT over the VMM's
 * limits, -EINVAL when the template is not paused or has no vsock).
 */
int invoke_fork_paused(const struct invoke_request *rq, struct vm **clone);

/*
 * Run the request in clone (from invoke_fork_paused(), or NULL: fork one
 * now). 0 with the answer in r, or a negative errno: the fork's or
 * vsock_call()'s. The clone is gone when it returns, and its reference
 * dropped.
 */
int invoke(const struct invoke_request *rq, struct vm *clone, struct invoke_result *r);

/*
 * The same with the clone in a process of its own (fork/procfork.h), forked
 * for the request with a warm worker of workers when there is one, and put
 * in a cgroup with the limits of cgroups (NULL: none) before it runs. Its
 * private_bytes are its cgroup's peak. The process is ended and reaped, its
 * socket and cgroup removed, when it returns; r->over_memory when the
 * clone went over its memory limit and the kernel ended it.
 */
int invoke_in_process(const struct invoke_request *rq, struct proc_pool *workers,
		      const struct clone_cgroups *cgroups, struct invoke_result *r);

#endif
