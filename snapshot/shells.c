#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/shells.h"
#include "vmm/log.h"
#include "vmm/vm.h"

struct shell {
	struct vm *vm;
	dev_t base_dev;         /* the base mapped in it, if any */
	ino_t base_ino;
	bool mapped;
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
	struct guest_mem base;  /* fd only (no mapping): the base to premap; fd -1 if none */
	dev_t base_dev;
	ino_t base_ino;
};

static bool same_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Build one shell; premap the base the pool knows (a copy taken under the lock). */
static int build_shell(struct shell_pool *p, struct shell *out)
{
	struct guest_mem base = { .fd = -1 };
	int ret;

	pthread_mutex_lock(&p->lock);
	if (p->base.fd >= 0) {
		base = p->base;
		base.fd = fcntl(p->base.fd, F_DUPFD_CLOEXEC, 0);
		out->base_dev = p->base_dev;
		out->base_ino = p->base_ino;
	}
	pthread_mutex_unlock(&p->lock);
	out->mapped = false;
	out->vm = NULL;
	ret = vm_create_shell(&out->vm, p->kvm, p->mem_size, p->ncpus, &p->mask);
	if (!ret && base.fd >= 0)
		out->mapped = guest_mem_map_base(&out->vm->mem, &base) == 0;
	/* Threads too are made ahead: parked, they wait for the fork to resume them. */
	if (!ret)
		ret = vm_start_paused(out->vm);
	if (!ret)
		vm_wait_parked(out->vm);
	else if (out->vm)
		vm_destroy(out->vm);
	if (base.fd >= 0)
		close(base.fd);
	return ret;
}

static void *refill_thread(void *arg)
{
	struct shell_pool *p = arg;

	for (;;) {
		struct shell s;

		pthread_mutex_lock(&p->lock);
		while (!p->stopping && p->nready >= p->target)
			pthread_cond_wait(&p->changed, &p->lock);
		pthread_mutex_unlock(&p->lock);
		if (p->stopping)
			break;
		if (build_shell(p, &s) < 0) {
			/* Out of memory or fds: try again later rather than spin. */
			struct timespec pause = { 0, 100 * 1000 * 1000 };

			nanosleep(&pause, NULL);
			continue;
		}
		pthread_mutex_lock(&p->lock);
		p->ready[p->nready++] = s;
		pthread_cond_broadcast(&p->changed);
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

int shell_pool_create(struct shell_pool **out, struct kvm_host *kvm, uint64_t mem_size,
		      unsigned ncpus, const struct cpuid_mask *mask, unsigned target)
{
	struct shell_pool *p = calloc(1, sizeof(*p));

	if (!p || !target)
		goto fail;
	p->ready = calloc(target, sizeof(*p->ready));
	if (!p->ready)
		goto fail;
	p->kvm = kvm;
	p->mem_size = mem_size;
	p->ncpus = ncpus;
	p->target = target;
	if (mask)
		p->mask = *mask;
	p->base.fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	if (pthread_create(&p->thread, NULL, refill_thread, p)) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->changed);
		goto fail;
	}
	*out = p;
	return 0;
fail:
	if (p)
		free(p->ready);
	free(p);
	return target ? -ENOMEM : -EINVAL;
}

static bool fits(const struct shell_pool *p, const struct vm *parent)
{
	return parent->mem.size == p->mem_size && parent->ncpus == p->ncpus &&
	       !memcmp(&parent->cpuid_mask, &p->mask, sizeof(p->mask));
}

struct vm *shell_pool_take(struct shell_pool *p, const struct vm *parent, bool *base_mapped)
{
	struct shell s;

	*base_mapped = false;
	if (!p || !fits(p, parent))
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (!p->nready) {
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	s = p->ready[--p->nready];
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	*base_mapped = s.mapped && same_file(parent->mem.fd, s.base_dev, s.base_ino);
	return s.vm;
}

void shell_pool_set_base(struct shell_pool *p, const struct guest_mem *base)
{
	struct stat st;

	if (!p || !base->frozen || base->size != p->mem_size || fstat(base->fd, &st) < 0)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->base.fd >= 0)
		close(p->base.fd);
	p->base = (struct guest_mem){ .fd = fcntl(base->fd, F_DUPFD_CLOEXEC, 0),
				      .size = base->size, .frozen = true,
				      .is_memfd = base->is_memfd };
	p->base_dev = st.st_dev;
	p->base_ino = st.st_ino;
	pthread_mutex_unlock(&p->lock);
}

unsigned shell_pool_ready(struct shell_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->nready;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned shell_pool_wait_full(struct shell_pool *p, unsigned timeout_ms)
{
	struct timespec tick = { 0, 1000 * 1000 };

	for (unsigned i = 0; i < timeout_ms && shell_pool_ready(p) < p->target; i++)
		nanosleep(&tick, NULL);
	return shell_pool_ready(p);
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
	if (p->base.fd >= 0)
		close(p->base.fd);
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
	free(p->ready);
	free(p);
}
