/*
 * Clones in their own processes. A process fork captures the parent once
 * (fork/fork.h: fork_capture), writes its state and private pages into a
 * sealed state file, and hands each clone to a worker process ("vm-fork
 * clone-worker", tools/cmd_worker.c) with the frozen base over a Unix socket
 * (SCM_RIGHTS; fork/procmsg.h). The worker maps the base MAP_PRIVATE into
 * a shell it made beforehand, loads the state, runs the clone and exits with
 * the clone's status. The processes share only read-only, sealed files, so
 * killing one (even with SIGKILL) cannot harm the parent or its siblings.
 *
 * A pool keeps workers started ahead of time (warm: their KVM VM, vCPUs and
 * memory slots exist), refilled by a background thread; forks start the rest
 * cold. The worker processes are children of the caller, who reaps them
 * (waitpid, or fork/procclones.h, which the API uses); they are not VMs
 * of its vmm.
 * Clone ids come from the parent's vmm; a process clone that forks itself
 * (guest-requested) numbers its own children within its process.
 */
#ifndef FORK_PROCFORK_H
#define FORK_PROCFORK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct device_config;
struct fork_stats;
struct proc_pool;
struct vm;

/* One clone in its own process. */
struct proc_clone {
	pid_t pid;
	uint64_t id;                /* its clone id, allocated in the parent's vmm */
};

/* How long a fork waits for a worker's answer before it gives up on it. */
#define PROC_WORKER_TIMEOUT_MS 30000

/*
 * How to start a clone worker: its command line, cmd[0] the executable, NULL
 * at the end, kept by the caller for as long as it is used. The worker finds
 * its end of the socket at fd PROC_WORKER_FD. The CLI's is `vm-fork
 * clone-worker --socket 3` (tools/serve.c); the library names no program.
 */
#define PROC_WORKER_FD 3

/*
 * The pool (fork/procpool.c): target warm workers shaped like vm (RAM size, vCPUs, CPUID mask;
 * target 0: none, forks start every worker cold), started with cmd. Returns 0 or -errno.
 */
int proc_pool_create(struct proc_pool **out, const char *const *cmd, const struct vm *shape,
		     unsigned target);
/* Warm workers ready now. */
unsigned proc_pool_ready(struct proc_pool *pool);
/* Wait until the pool holds its target (or timeout_ms passes); returns ready. */
unsigned proc_pool_wait_full(struct proc_pool *pool, unsigned timeout_ms);
/* Stop the refill thread, end and reap the warm workers (clones handed out are not touched). */
void proc_pool_destroy(struct proc_pool *pool);

/*
 * Fork parent (running or paused, registered in a vmm) into count clones, each
 * in its own process: warm workers from pool when it has them for parent's
 * shape, cold ones for the rest. A running parent is paused only while its
 * state and private pages are captured and written out, then runs on; a
 * paused one stays paused. Each clone gets a new id, generation + 1, child
 * index 1..count and the vmm's clone console. Returns 0 with clones[] filled
 * once every clone is loaded and starting, or -errno with none left running:
 * -EINVAL (bad count, parent stopped), -ECONNRESET or -ETIMEDOUT (a worker
 * died or hung), -ENOENT (no such executable), -ENOTSUP (no worker command), or a
 * worker's refusal.
 */
int vm_fork_to_pool(struct proc_pool *pool, struct vm *parent, unsigned count,
		    struct proc_clone *clones, struct fork_stats *st);
/*
 * The same, each clone's devices rebound to its own backends (fork/fork.h:
 * struct fork_request's devices; NULL: the parent's): the job carries the
 * arguments, the worker's clone rebinds before it attaches.
 */
int vm_fork_to_pool_devices(struct proc_pool *pool, struct vm *parent, unsigned count,
			    const struct device_config *devices, struct proc_clone *clones,
			    struct fork_stats *st);
/*
 * Where a clone's process goes before it runs: place() is called with each
 * worker's pid and its clone's id before the worker gets its job, so that
 * the caller can put the process in a cgroup of its own before the clone
 * writes a page. A negative errno fails the fork (the workers are ended).
 */
struct proc_placement {
	int (*place)(void *ctx, pid_t pid, uint64_t clone_id);
	void *ctx;
};

/* vm_fork_to_pool_devices() with each clone's process placed first (placement NULL: not). */
int vm_fork_to_pool_placed(struct proc_pool *pool, struct vm *parent, unsigned count,
			   const struct device_config *devices,
			   const struct proc_placement *placement, struct proc_clone *clones,
			   struct fork_stats *st);
/* The same with cold workers only, of the vmm's worker_cmd (-ENOTSUP without one). */
int vm_fork_to_processes(struct vm *parent, unsigned count, struct proc_clone *clones,
			 struct fork_stats *st);

/*
 * Start one worker with cmd, its end of a new socketpair (SOCK_SEQPACKET) at
 * fd PROC_WORKER_FD; *sock is ours (close-on-exec). Nothing is sent yet.
 * Returns 0 or -errno.
 */
int proc_worker_spawn(const char *const *cmd, pid_t *pid, int *sock);
/* The console spec of clone id of parent: its vmm's clone_console with %u = id. */
int proc_clone_console(const struct vm *parent, uint64_t id, char *out, size_t size);
#endif
