/*
 * One function's pool (the serverless pool of `vm-fork serve`): its paused
 * template, warm clones forked paused ahead of requests, and a bound on the
 * invocations at once. An invocation takes a warm clone (or forks one when
 * none is left), runs the request in it (server/invoke.h), and the clone is
 * removed; a thread refills the warm clones in the background.
 *
 * How many are kept warm: the invocations in flight, at least min_warm and
 * at most max_warm, so that a burst finds clones ready and an idle pool
 * holds only min_warm. A warm clone costs only the pages its fork copied.
 *
 * A pool with limits runs each clone in a process of its own instead, in a
 * cgroup with those limits (server/clone_cgroup.h), where the host has cgroup
 * v2; its warm ones are then max_warm worker processes with their VMs made.
 * Where the host cannot, the limits are logged and shown as not enforced.
 */
#ifndef SERVER_FN_POOL_H
#define SERVER_FN_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/device.h"
#include "server/clone_cgroup.h"
#include "server/invoke.h"
#include "server/metrics.h"

struct serve_function;
struct vm;
struct vmm;

/* How an invocation ended, as the HTTP status and the metrics name it. */
enum fn_outcome {
	FN_OK,           /* 200 */
	FN_OVERLOAD,     /* 429: max_concurrent, or the VMM's max_vms */
	FN_TIMEOUT,      /* 504: no answer within timeout_ms */
	FN_CRASHED,      /* 502: the guest closed, refused or stopped without an answer */
	FN_TOO_BIG,      /* 502: the answer is longer than max_answer */
	FN_OUT_OF_MEMORY, /* 502: the clone went over pool.mem_limit, and the kernel ended it */
	FN_ERROR,        /* 500: the VMM failed (fork, socket) */
	FN_UNAVAILABLE,  /* 503: the pool is stopping */
	FN_OUTCOMES
};

/* What the metrics show of a pool, copied under its lock. */
struct fn_pool_stats {
	uint64_t outcomes[FN_OUTCOMES];
	uint64_t forks;                      /* clones made, warm or on demand */
	unsigned warm, inflight, warm_target;
	struct metrics_hist fork_s, deliver_s, answer_s, total_s; /* seconds */
	struct metrics_hist private_bytes;   /* each clone's own pages at its end */
};

struct fn_pool {
	struct vmm *vmm;
	struct vm *template;                 /* referenced */
	const struct serve_function *f;
	struct device_config devices;        /* each clone's vsock: f->vsock */
	pthread_mutex_t lock;
	pthread_cond_t wake;                 /* the refill thread's: a clone was taken, or stop */
	struct vm **warm;                    /* paused clones, referenced; max_warm of room */
	/*
	 * With limits (pool.mem_limit, pool.cpu_limit) that the host can enforce,
	 * each clone runs in a process of its own, in a cgroup of its own, forked
	 * from workers' warm processes; warm[] stays empty then.
	 */
	struct clone_cgroups cgroups;        /* .enforced, or .why not */
	struct proc_pool *workers;           /* NULL: clones are threads of this process */
	bool stopping;
	pthread_t refill;
	struct fn_pool_stats stats;
};

/* Start f's pool on its template (a reference is taken). 0 or -errno. */
int fn_pool_start(struct fn_pool **out, struct vmm *vmm, struct vm *template,
		  const struct serve_function *f);
/* Stop refilling, remove the warm clones, drop the template's reference. NULL is ok. */
void fn_pool_stop(struct fn_pool *p);

/*
 * Invoke the function with body: the outcome, with the answer in r->answer
 * when FN_OK (free() it), and the error's errno in *err otherwise (-EBUSY
 * for max_concurrent, -EDQUOT for the VMM's limits).
 */
enum fn_outcome fn_pool_invoke(struct fn_pool *p, const void *body, size_t len,
			       struct invoke_result *r, int *err);
void fn_pool_get_stats(struct fn_pool *p, struct fn_pool_stats *out);
/* "ok", "overload", ...: the outcome label of the metrics. */
const char *fn_outcome_name(enum fn_outcome o);

#endif
