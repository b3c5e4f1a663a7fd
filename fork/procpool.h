/*
 * Inside fork/procfork.c: the worker processes and the pool of warm ones
 * (fork/procpool.c). Callers outside use fork/procfork.h.
 */
#ifndef FORK_PROCPOOL_H
#define FORK_PROCPOOL_H

#include <sys/types.h>

#include "fork/procmsg.h"

struct proc_pool;
struct vm;

struct proc_worker {
	pid_t pid;                  /* 0: none */
	int sock;                   /* ours; -1: none */
};

/* The shape message for workers that can take clones of vm. */
void proc_shape_of(const struct vm *vm, struct procmsg_shape *s);
/* Spawn a worker with cmd (fork/procfork.h) and send it shape; it answers READY later. */
int proc_worker_start(const char *const *cmd, const struct procmsg_shape *shape,
		      struct proc_worker *w);
/* End a worker (or a clone that must not stay) with SIGKILL and reap it. */
void proc_worker_discard(struct proc_worker *w);
void proc_workers_discard(struct proc_worker *w, unsigned n);

/* Up to max live warm workers of this shape (none from a NULL pool); returns how many. */
unsigned proc_pool_take(struct proc_pool *pool, const struct procmsg_shape *shape,
			struct proc_worker *w, unsigned max);
/* Let the refill thread replace what was taken (after a fork: not during it). */
void proc_pool_refill(struct proc_pool *pool);
/* The command line the pool starts workers with; NULL for a NULL pool. */
const char *const *proc_pool_cmd(const struct proc_pool *pool);

#endif
