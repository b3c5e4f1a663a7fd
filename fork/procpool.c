#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/procfork.h"
#include "fork/procmsg.h"
#include "fork/procpool.h"
#include "vmm/vm.h"

#define REFILL_BACKOFF_MAX_MS 5000

struct proc_pool {
	const char *const *cmd;     /* how workers start (the caller's) */
	struct procmsg_shape shape;
	unsigned target;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t thread;
	bool stopping;
	unsigned nready;
	struct proc_worker *ready;      /* target of them */
};

/* ---- Worker processes ---- */

static int spawn_attrs(posix_spawnattr_t *attr)
{
	static const int defaults[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD };
	sigset_t none, dfl;

	sigemptyset(&none);
	sigemptyset(&dfl);
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		sigaddset(&dfl, defaults[i]);
	/* The VMM blocks its stop signals (tools/serve.c); a worker handles its own. */
	if (posix_spawnattr_init(attr))
		return -ENOMEM;
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &dfl);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	return 0;
}

/* posix_spawn: no copy of this (large, threaded) process's page tables, unlike fork(). */
static int spawn(const char *const *cmd, int child_end, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int ret = spawn_attrs(&attr);

	if (ret < 0)
		return ret;
	if (posix_spawn_file_actions_init(&fa)) {
		posix_spawnattr_destroy(&attr);
		return -ENOMEM;
	}
	/* dup2 leaves the copy without close-on-exec: the worker gets exactly this one. */
	ret = -posix_spawn_file_actions_adddup2(&fa, child_end, PROC_WORKER_FD);
	if (!ret)
		ret = -posix_spawn(pid, cmd[0], &fa, &attr, (char *const *)cmd, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return ret;
}

int proc_worker_spawn(const char *const *cmd, pid_t *pid, int *sock)
{
	int sv[2], ret;

	if (!cmd || !cmd[0]) {
		pr_err("clone worker: this VMM was given no command to start workers with");
		return -ENOTSUP;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (sv[1] == PROC_WORKER_FD) { /* dup2 onto itself would keep close-on-exec */
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, PROC_WORKER_FD + 1);

		close(sv[1]);
		sv[1] = moved;
	}
	ret = sv[1] < 0 ? -EMFILE : spawn(cmd, sv[1], pid);
	if (sv[1] >= 0)
		close(sv[1]);
	if (ret < 0) {
		pr_err("clone worker: cannot start %s: %s", cmd[0], strerror(-ret));
		close(sv[0]);
		return ret;
	}
	*sock = sv[0];
	return 0;
}

/* End a worker that will not be used (or a clone that must not stay) and reap it. */
void proc_worker_discard(struct proc_worker *w)
{
	int status;

	if (w->sock >= 0)
		close(w->sock);
	w->sock = -1;
	if (w->pid <= 0)
		return;
	kill(w->pid, SIGKILL);
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
	w->pid = 0;
}

void proc_workers_discard(struct proc_worker *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		proc_worker_discard(&w[i]);
}

/* Spawn a worker and tell it its shape; it answers READY once its shell is made. */
int proc_worker_start(const char *const *cmd, const struct procmsg_shape *shape,
		      struct proc_worker *w)
{
	int ret = proc_worker_spawn(cmd, &w->pid, &w->sock);

	if (ret < 0) {
		w->pid = 0;
		w->sock = -1;
		return ret;
	}
	ret = procmsg_send(w->sock, shape, sizeof(*shape), NULL, 0);
	if (ret < 0)
		proc_worker_discard(w);
	return ret;
}

/* A warm worker that died or spoke out of turn shows readable or hung up. */
static bool worker_alive(const struct proc_worker *w)
{
	struct pollfd p = { .fd = w->sock, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

void proc_shape_of(const struct vm *vm, struct procmsg_shape *s)
{
	memset(s, 0, sizeof(*s));
	procmsg_init(&s->hdr, PROCMSG_SHAPE, sizeof(*s), 0);
	s->mem_size = vm->mem.size;
	s->ncpus = vm->ncpus;
	s->mask = vm->cpuid_mask;
}

/* ---- The pool ---- */

/* Wait for READY in short steps, so that destroying the pool is never held up long. */
static int wait_ready(struct proc_pool *p, struct proc_worker *w)
{
	for (unsigned waited = 0; waited < PROC_WORKER_TIMEOUT_MS; waited += 100) {
		int ret = procmsg_recv_status(w->sock, PROCMSG_READY, 100);
		bool stopping;

		if (ret != -ETIMEDOUT)
			return ret;
		pthread_mutex_lock(&p->lock);
		stopping = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (stopping)
			return -ECANCELED;
	}
	return -ETIMEDOUT;
}

/* Sleep ms, or less when the pool is being destroyed. Pool lock held. */
static void backoff_locked(struct proc_pool *p, unsigned ms)
{
	struct timespec until = realtime_after_ms(ms);

	while (!p->stopping && pthread_cond_timedwait(&p->changed, &p->lock, &until) == 0)
		;
}

/* Start one warm worker; returns 0 or -errno (the worker is gone then). */
static int refill_once(struct proc_pool *p)
{
	struct proc_worker w;
	int ret = proc_worker_start(p->cmd, &p->shape, &w);

	if (!ret)
		ret = wait_ready(p, &w);
	if (ret < 0) {
		proc_worker_discard(&w);
		return ret;
	}
	pthread_mutex_lock(&p->lock);
	if (p->nready < p->target && !p->stopping) {
		p->ready[p->nready++] = w;
		w.pid = 0;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	if (w.pid)
		proc_worker_discard(&w);
	return 0;
}

static void *refill_thread(void *arg)
{
	struct proc_pool *p = arg;
	struct sched_param normal = { 0 };
	unsigned backoff = 0;

	/*
	 * Background work: SCHED_BATCH is never woken ahead of a running thread,
	 * so a refill does not preempt the fork that made room for it. Workers
	 * inherit it while they warm up, and leave it when a job comes.
	 */
	pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		if (p->nready >= p->target) {
			pthread_cond_wait(&p->changed, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		if (refill_once(p) == 0) {
			backoff = 0;
		} else { /* a missing binary or no memory: do not spin on it */
			backoff = backoff ? backoff * 2 : 100;
			backoff = backoff < REFILL_BACKOFF_MAX_MS ? backoff : REFILL_BACKOFF_MAX_MS;
		}
		pthread_mutex_lock(&p->lock);
		if (backoff)
			backoff_locked(p, backoff);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void pool_free(struct proc_pool *p)
{
	free(p->ready);
	free(p);
}

int proc_pool_create(struct proc_pool **out, const char *const *cmd, const struct vm *shape,
		     unsigned target)
{
	struct proc_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->cmd = cmd;
	p->ready = calloc(target ? target : 1, sizeof(*p->ready));
	if (!p->ready) {
		pool_free(p);
		return -ENOMEM;
	}
	p->target = target;
	proc_shape_of(shape, &p->shape);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	if (pthread_create(&p->thread, NULL, refill_thread, p)) {
		pool_free(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

unsigned proc_pool_ready(struct proc_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->nready;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned proc_pool_wait_full(struct proc_pool *p, unsigned timeout_ms)
{
	struct timespec ms1 = { 0, 1000 * 1000 };
	unsigned n = 0;

	for (unsigned waited = 0; waited <= timeout_ms; waited++) {
		n = proc_pool_ready(p);
		if (n >= p->target)
			break;
		nanosleep(&ms1, NULL);
	}
	return n;
}

void proc_pool_destroy(struct proc_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	proc_workers_discard(p->ready, p->nready);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
	pool_free(p);
}

/* Up to max live warm workers of this shape into w[]; returns how many. */
unsigned proc_pool_take(struct proc_pool *p, const struct procmsg_shape *shape,
			  struct proc_worker *w, unsigned max)
{
	unsigned n = 0, live = 0;

	if (!p || p->shape.mem_size != shape->mem_size || p->shape.ncpus != shape->ncpus ||
	    memcmp(&p->shape.mask, &shape->mask, sizeof(shape->mask)))
		return 0;
	/* No wake-up for the refill thread yet: proc_pool_refill() after the fork. */
	pthread_mutex_lock(&p->lock);
	while (n < max && p->nready)
		w[n++] = p->ready[--p->nready];
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < n; i++) {
		if (worker_alive(&w[i]))
			w[live++] = w[i];
		else
			proc_worker_discard(&w[i]);
	}
	return live;
}

/* New workers start after a fork, so that they do not take CPUs from it. */
void proc_pool_refill(struct proc_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

const char *const *proc_pool_cmd(const struct proc_pool *p)
{
	return p ? p->cmd : NULL;
}
