/* One function's pool of warm clones and its bound on invocations (server/fn_pool.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/procfork.h"
#include "fork/vmm.h"
#include "server/fn_pool.h"
#include "server/serve_config.h"
#include "vmm/vm.h"

/* A failed refill waits this long before the next try (the VMM's max_vms, say). */
#define REFILL_BACKOFF_MS 100

static const char *const outcome_names[FN_OUTCOMES] = {
	"ok", "overload", "timeout", "crashed", "too_big", "out_of_memory", "error", "unavailable",
};

const char *fn_outcome_name(enum fn_outcome o)
{
	return o < FN_OUTCOMES ? outcome_names[o] : "?";
}

static void request_for(const struct fn_pool *p, struct invoke_request *rq)
{
	*rq = (struct invoke_request){ .template = p->template, .devices = &p->devices,
				       .port = p->f->port, .timeout_ms = p->f->timeout_ms,
				       .max_answer = p->f->max_answer, .measure_private = true };
}

/* The clones worth keeping warm now (lock held). */
static unsigned warm_target(const struct fn_pool *p)
{
	const struct serve_pool *c = &p->f->pool;
	unsigned want = p->stats.inflight > c->min_warm ? p->stats.inflight : c->min_warm;

	return want < c->max_warm ? want : c->max_warm;
}

static void remove_clone(struct fn_pool *p, struct vm *clone)
{
	uint64_t id = clone->id;

	vmm_put(p->vmm, clone);
	vmm_remove(p->vmm, id);
}

/*
 * Fork paused clones, or remove the ones beyond need, outside the lock,
 * until there are as many as warm_target() asks.
 */
static void *refill_thread(void *arg)
{
	struct fn_pool *p = arg;
	struct invoke_request rq;

	request_for(p, &rq);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct vm *clone = NULL;
		int ret;

		p->stats.warm_target = warm_target(p);
		if (p->stats.warm > p->stats.warm_target) { /* a burst is over: back to min_warm */
			struct vm *extra = p->warm[--p->stats.warm];

			pthread_mutex_unlock(&p->lock);
			remove_clone(p, extra);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (p->stats.warm == p->stats.warm_target) {
			pthread_cond_wait(&p->wake, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		ret = invoke_fork_paused(&rq, &clone);
		pthread_mutex_lock(&p->lock);
		if (ret < 0) {
			struct timespec until = realtime_after_ms(REFILL_BACKOFF_MS);

			pthread_cond_timedwait(&p->wake, &p->lock, &until);
			continue;
		}
		p->stats.forks++;
		p->warm[p->stats.warm++] = clone;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Clones in processes with cgroups when the limits ask for them and the host allows. */
static int start_workers(struct fn_pool *p)
{
	const struct serve_pool *c = &p->f->pool;
	const struct clone_limits limits = { .mem_max = c->mem_limit, .cpus = c->cpu_limit };

	if (!limits.mem_max && limits.cpus <= 0)
		return 0;
	if (clone_cgroups_open(&p->cgroups, NULL, &limits) < 0) {
		pr_warn("function %s: pool.mem_limit and pool.cpu_limit are not enforced: %s",
			p->f->name, p->cgroups.why);
		return 0;
	}
	pr_info("function %s: each clone in a process of its own, in a cgroup under %s",
		p->f->name, p->cgroups.parent);
	return proc_pool_create(&p->workers, p->vmm->worker_cmd, p->template, c->max_warm);
}

int fn_pool_start(struct fn_pool **out, struct vmm *vmm, struct vm *template,
		  const struct serve_function *f)
{
	struct fn_pool *p = calloc(1, sizeof(*p));
	struct fn_pool_stats *s;
	int ret;

	if (!p || !(p->warm = calloc(f->pool.max_warm + 1, sizeof(*p->warm)))) {
		free(p);
		return -ENOMEM;
	}
	p->vmm = vmm;
	p->template = template;
	p->f = f;
	p->devices.args[device_by_option("vsock")] = f->vsock;
	s = &p->stats;
	/* 100 us to ~52 s; bytes from 4 KiB to 4 GiB */
	metrics_hist_exponential(&s->fork_s, 1e-4, 2, 20);
	metrics_hist_exponential(&s->deliver_s, 1e-4, 2, 20);
	metrics_hist_exponential(&s->answer_s, 1e-4, 2, 20);
	metrics_hist_exponential(&s->total_s, 1e-4, 2, 20);
	metrics_hist_exponential(&s->private_bytes, 4096, 4, 11);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	vmm_ref(vmm, template);
	ret = start_workers(p);
	/* Clones in processes come warm from the workers' pool: no paused ones here. */
	if (!ret && !p->workers && pthread_create(&p->refill, NULL, refill_thread, p))
		ret = -EAGAIN;
	if (ret < 0) {
		proc_pool_destroy(p->workers);
		vmm_put(vmm, template);
		free(p->warm);
		free(p);
		return ret;
	}
	*out = p;
	return 0;
}

void fn_pool_stop(struct fn_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (p->workers)
		proc_pool_destroy(p->workers);
	else
		pthread_join(p->refill, NULL);
	while (p->stats.warm)
		remove_clone(p, p->warm[--p->stats.warm]);
	vmm_put(p->vmm, p->template);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->warm);
	free(p);
}

static enum fn_outcome outcome_of(int err)
{
	switch (err) {
	case 0:
		return FN_OK;
	case -EBUSY:
	case -EDQUOT:
	case -EAGAIN:
		return FN_OVERLOAD;
	case -ETIMEDOUT:
		return FN_TIMEOUT;
	case -ENODATA:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EPIPE:
		return FN_CRASHED;
	case -EMSGSIZE:
		return FN_TOO_BIG;
	case -ESHUTDOWN:
		return FN_UNAVAILABLE;
	default:
		return FN_ERROR;
	}
}

/* Count the invocation in and take a warm clone (NULL: none); -EBUSY over max_concurrent. */
static int admit(struct fn_pool *p, struct vm **clone)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		ret = -ESHUTDOWN;
	} else if (p->stats.inflight >= p->f->pool.max_concurrent) {
		ret = -EBUSY;
	} else {
		p->stats.inflight++;
		*clone = p->stats.warm ? p->warm[--p->stats.warm] : NULL;
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static void account(struct fn_pool *p, bool admitted, bool forked, enum fn_outcome o,
		    const struct invoke_result *r)
{
	struct fn_pool_stats *s = &p->stats;

	pthread_mutex_lock(&p->lock);
	s->outcomes[o]++;
	if (admitted) {
		s->inflight--;
		pthread_cond_signal(&p->wake);
		s->forks += forked;
		metrics_hist_observe(&s->fork_s, (double)r->fork_ns / 1e9);
		if (o == FN_OK) {
			metrics_hist_observe(&s->deliver_s, (double)r->deliver_ns / 1e9);
			metrics_hist_observe(&s->answer_s, (double)r->answer_ns / 1e9);
			metrics_hist_observe(&s->total_s,
					     (double)(r->fork_ns + r->deliver_ns + r->answer_ns) / 1e9);
		}
		if (r->private_bytes)
			metrics_hist_observe(&s->private_bytes, (double)r->private_bytes);
	}
	pthread_mutex_unlock(&p->lock);
}

enum fn_outcome fn_pool_invoke(struct fn_pool *p, const void *body, size_t len,
			       struct invoke_result *r, int *err)
{
	struct invoke_request rq;
	struct vm *clone = NULL;
	enum fn_outcome o;
	int ret = admit(p, &clone);

	memset(r, 0, sizeof(*r));
	if (ret == 0) {
		request_for(p, &rq);
		rq.body = body;
		rq.len = len;
		ret = p->workers ? invoke_in_process(&rq, p->workers, &p->cgroups, r) :
				   invoke(&rq, clone, r);
	}
	o = r->over_memory ? FN_OUT_OF_MEMORY : outcome_of(ret);
	account(p, ret != -EBUSY && ret != -ESHUTDOWN, !clone && r->clone_id, o, r);
	*err = ret;
	return o;
}

void fn_pool_get_stats(struct fn_pool *p, struct fn_pool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->stats;
	pthread_mutex_unlock(&p->lock);
	if (p->workers) {
		out->warm = proc_pool_ready(p->workers);
		out->warm_target = p->f->pool.max_warm;
	}
}
