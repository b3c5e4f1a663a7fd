#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/shells.h"
#include "state/vm_snapshot.h"

#define REFILL_SETTLE_NS (50 * 1000 * 1000ULL)
#include "vmm/vm.h"

struct shell {
	struct vm *vm;
	dev_t base_dev;         /* the base mapped in it, if any */
	ino_t base_ino;
	bool mapped;
	uint64_t serial;        /* the template state loaded in it, 0 if none */
};

/* The template the pool prepares shells for; replaced whole, freed when unused. */
struct template {
	struct guest_mem base;  /* fd only, no mapping */
	dev_t dev;
	ino_t ino;
	struct vm_snapshot state;
	uint64_t serial;
	unsigned users;         /* guarded by the pool lock */
};

struct shell_pool {
	struct kvm_host *kvm;
	uint64_t mem_size;
	unsigned ncpus, target;
	struct cpuid_mask mask;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t thread;
	bool stopping;
	unsigned nready;
	struct shell *ready;    /* target of them */
	uint64_t last_take_ns;  /* when a fork last took a shell */
	struct template *tmpl;  /* or NULL */
};

static void template_put_locked(struct template *t)
{
	if (!t || --t->users)
		return;
	close(t->base.fd);
	vm_snapshot_free(&t->state);
	free(t);
}

static bool prepared(const struct shell *s, const struct template *t)
{
	return t && s->mapped && s->base_dev == t->dev && s->base_ino == t->ino &&
	       (!t->serial || s->serial == t->serial);
}

/* Bring a shell up to the template: map its base, load its state. Pool lock not held. */
static void prepare(struct shell *s, struct template *t)
{
	if (!(s->mapped && s->base_dev == t->dev && s->base_ino == t->ino)) {
		s->mapped = guest_mem_premap(&s->vm->mem, &t->base) == 0;
		s->base_dev = t->dev;
		s->base_ino = t->ino;
		s->serial = 0;
	}
	if (s->mapped && t->serial && s->serial != t->serial)
		s->serial = vm_snapshot_load(s->vm, &t->state) == 0 ? t->serial : 0;
}

static int build_shell(struct shell_pool *p, struct shell *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = vm_create_shell(&out->vm, p->kvm, p->mem_size, p->ncpus, &p->mask, NULL);
	if (!ret)
		ret = vm_start_paused(out->vm);
	if (ret < 0) {
		vm_destroy(out->vm);
		return ret;
	}
	vm_wait_parked(out->vm);
	return 0;
}

/* Under the lock: a ready shell not yet prepared for the template, taken out; or -1. */
static int unprepared_locked(struct shell_pool *p)
{
	for (unsigned i = 0; p->tmpl && i < p->nready; i++)
		if (!prepared(&p->ready[i], p->tmpl))
			return (int)i;
	return -1;
}

static void refill_once(struct shell_pool *p)
{
	struct template *t;
	struct shell s;
	int i;

	pthread_mutex_lock(&p->lock);
	t = p->tmpl;
	if (t)
		t->users++;
	i = unprepared_locked(p);
	if (i >= 0) {
		s = p->ready[i];
		p->ready[i] = p->ready[--p->nready];
	}
	pthread_mutex_unlock(&p->lock);
	if (i < 0 && build_shell(p, &s) < 0) {
		struct timespec later = { 0, 100 * 1000 * 1000 }; /* out of memory or fds */

		nanosleep(&later, NULL);
	} else {
		if (t)
			prepare(&s, t);
		pthread_mutex_lock(&p->lock);
		p->ready[p->nready++] = s;
		pthread_cond_broadcast(&p->changed);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_lock(&p->lock);
	template_put_locked(t);
	pthread_mutex_unlock(&p->lock);
}

static bool work_locked(struct shell_pool *p)
{
	return p->nready < p->target || unprepared_locked(p) >= 0;
}

/*
 * A fork that just took a shell has a child starting: mapping many GiB into
 * the next shell right then (the process's mmap lock) delays that child's
 * first instructions by milliseconds at 16 GiB. Let it start first.
 */
static void settle_after_take(struct shell_pool *p)
{
	uint64_t since = now_ns() - __atomic_load_n(&p->last_take_ns, __ATOMIC_RELAXED);

	if (since < REFILL_SETTLE_NS) {
		struct timespec rest = { 0, (long)(REFILL_SETTLE_NS - since) };

		nanosleep(&rest, NULL);
	}
}

static void *refill_thread(void *arg)
{
	struct shell_pool *p = arg;
	struct sched_param idle = { 0 };

	/* Background work: it must never take a CPU from a fork or a running guest. */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stopping && !work_locked(p))
			pthread_cond_wait(&p->changed, &p->lock);
		pthread_mutex_unlock(&p->lock);
		if (p->stopping)
			break;
		settle_after_take(p);
		refill_once(p);
	}
	return NULL;
}

int shell_pool_create(struct shell_pool **out, struct kvm_host *kvm, uint64_t mem_size,
		      unsigned ncpus, const struct cpuid_mask *mask, unsigned target)
{
	struct shell_pool *p;

	if (!target)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p)
		p->ready = calloc(target, sizeof(*p->ready));
	if (!p || !p->ready) {
		free(p);
		return -ENOMEM;
	}
	*p = (struct shell_pool){ .kvm = kvm, .mem_size = mem_size, .ncpus = ncpus,
				  .target = target, .ready = p->ready };
	if (mask)
		p->mask = *mask;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	if (pthread_create(&p->thread, NULL, refill_thread, p)) {
		free(p->ready);
		free(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

static bool fits(const struct shell_pool *p, const struct vm *parent)
{
	/* A restored VM keeps its snapshot's CPUID: shells have this host's. */
	return parent->mem.size == p->mem_size && parent->ncpus == p->ncpus &&
	       !parent->cpuid_table && !memcmp(&parent->cpuid_mask, &p->mask, sizeof(p->mask));
}

static bool same_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Under the lock: ready shell i leaves the pool (the refill thread is told). */
static struct shell take_locked(struct shell_pool *p, unsigned i)
{
	struct shell s = p->ready[i];

	p->ready[i] = p->ready[--p->nready];
	__atomic_store_n(&p->last_take_ns, now_ns(), __ATOMIC_RELAXED);
	pthread_cond_broadcast(&p->changed);
	return s;
}

struct vm *shell_pool_take(struct shell_pool *p, const struct vm *parent, uint64_t serial,
			   struct shell_fit *fit)
{
	struct shell s;
	int best = -1;

	memset(fit, 0, sizeof(*fit));
	if (!p || !fits(p, parent))
		return NULL;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->nready; i++) {
		best = (int)i;
		if (serial && p->ready[i].serial == serial)
			break; /* fully prepared for this parent */
	}
	if (best >= 0)
		s = take_locked(p, (unsigned)best);
	pthread_mutex_unlock(&p->lock);
	if (best < 0)
		return NULL;
	fit->base_mapped = s.mapped && same_file(parent->mem.fd, s.base_dev, s.base_ino);
	fit->state_loaded = fit->base_mapped && serial && s.serial == serial;
	return s.vm;
}

struct vm *shell_pool_take_mapped(struct shell_pool *p, const struct vm *parent)
{
	struct vm *vm = NULL;
	struct stat st;

	if (!p || !fits(p, parent) || fstat(parent->mem.fd, &st) < 0)
		return NULL;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->nready && !vm; i++) {
		const struct shell *s = &p->ready[i];

		if (!s->mapped || s->serial || s->base_dev != st.st_dev || s->base_ino != st.st_ino)
			continue;
		vm = take_locked(p, i).vm;
	}
	pthread_mutex_unlock(&p->lock);
	return vm;
}

void shell_pool_set_template(struct shell_pool *p, const struct guest_mem *base,
			     const struct vm_snapshot *state, uint64_t serial)
{
	struct template *t;
	struct stat st;

	if (!p || base->size != p->mem_size || fstat(base->fd, &st) < 0)
		return;
	t = calloc(1, sizeof(*t));
	if (!t || (state && vm_snapshot_copy(&t->state, state) < 0)) {
		free(t);
		return;
	}
	t->base = (struct guest_mem){ .fd = fcntl(base->fd, F_DUPFD_CLOEXEC, 0), .size = base->size,
				      .is_memfd = base->is_memfd };
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->serial = serial;
	t->users = 1;
	pthread_mutex_lock(&p->lock);
	template_put_locked(p->tmpl);
	p->tmpl = t;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

unsigned shell_pool_ready(struct shell_pool *p, unsigned *nprepared)
{
	unsigned n, k = 0;

	pthread_mutex_lock(&p->lock);
	n = p->nready;
	for (unsigned i = 0; i < n; i++)
		k += !p->tmpl || prepared(&p->ready[i], p->tmpl);
	pthread_mutex_unlock(&p->lock);
	if (nprepared)
		*nprepared = k;
	return n;
}

unsigned shell_pool_target(struct shell_pool *p)
{
	return p->target;
}

unsigned shell_pool_wait_full(struct shell_pool *p, unsigned timeout_ms)
{
	struct timespec tick = { 0, 1000 * 1000 };
	unsigned n = 0, k = 0;

	for (unsigned i = 0; i <= timeout_ms; i++) {
		n = shell_pool_ready(p, &k);
		if (n >= p->target && k == n)
			break;
		nanosleep(&tick, NULL);
	}
	return n;
}

void shell_pool_destroy(struct shell_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	for (unsigned i = 0; i < p->nready; i++)
		vm_destroy(p->ready[i].vm);
	template_put_locked(p->tmpl);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
	free(p->ready);
	free(p);
}
