/* GET /metrics of `vm-fork serve`: every pool's figures and the process's (server/fn_server.h). */
#include <stdlib.h>

#include "core/process_stats.h"
#include "fork/vmm.h"
#include "server/fn_pool.h"
#include "server/fn_server_int.h"
#include "server/metrics.h"

enum hist_field { H_FORK, H_DELIVER, H_ANSWER, H_TOTAL, H_PRIVATE };

static const struct {
	const char *name, *help;
} hists[] = {
	[H_FORK] = { "vmfork_fork_seconds", "Fork of a clone, or taking a warm one, until it runs" },
	[H_DELIVER] = { "vmfork_deliver_seconds", "Delivering the body over vsock" },
	[H_ANSWER] = { "vmfork_answer_seconds", "From the body delivered to the answer's end" },
	[H_TOTAL] = { "vmfork_invoke_seconds", "An invocation answered, fork to answer" },
	[H_PRIVATE] = { "vmfork_clone_private_bytes",
			"A clone's own memory at its end: the pages it wrote, not the shared base" },
};

static const struct metrics_hist *hist_of(const struct fn_pool_stats *st, enum hist_field h)
{
	switch (h) {
	case H_FORK:
		return &st->fork_s;
	case H_DELIVER:
		return &st->deliver_s;
	case H_ANSWER:
		return &st->answer_s;
	case H_TOTAL:
		return &st->total_s;
	default:
		return &st->private_bytes;
	}
}

static void pool_gauges(struct metrics_buf *b, const struct fn_pool_stats *st, unsigned n,
			struct fn_pool *const *pools)
{
	static const char *const names[][2] = {
		{ "vmfork_warm_clones", "Paused clones ready for the next invocations" },
		{ "vmfork_warm_target", "The warm clones the pool refills to now" },
		{ "vmfork_inflight", "Invocations running now" },
	};

	for (unsigned g = 0; g < 3; g++) {
		metrics_family(b, names[g][0], "gauge", names[g][1]);
		for (unsigned i = 0; i < n; i++) {
			const char *l[] = { "function", pools[i]->f->name, NULL };
			unsigned v = g == 0 ? st[i].warm : g == 1 ? st[i].warm_target : st[i].inflight;

			metrics_sample(b, names[g][0], l, v);
		}
	}
}

static void pool_counters(struct metrics_buf *b, const struct fn_pool_stats *st, unsigned n,
			  struct fn_pool *const *pools)
{
	metrics_family(b, "vmfork_invocations_total", "counter", "Invocations, by how they ended");
	for (unsigned i = 0; i < n; i++)
		for (unsigned o = 0; o < FN_OUTCOMES; o++) {
			const char *l[] = { "function", pools[i]->f->name, "outcome",
					    fn_outcome_name(o), NULL };

			metrics_sample(b, "vmfork_invocations_total", l, (double)st[i].outcomes[o]);
		}
	metrics_family(b, "vmfork_forks_total", "counter",
		       "Clones forked, warm or on demand (forks per second: rate())");
	for (unsigned i = 0; i < n; i++) {
		const char *l[] = { "function", pools[i]->f->name, NULL };

		metrics_sample(b, "vmfork_forks_total", l, (double)st[i].forks);
	}
}

static void process_figures(struct metrics_buf *b, struct vmm *vmm)
{
	metrics_family(b, "vmfork_vms", "gauge", "VMs the VMM holds: templates, warm clones, running ones");
	metrics_sample(b, "vmfork_vms", NULL, vmm_get_usage(vmm).vms);
	metrics_family(b, "process_open_fds", "gauge", "Open file descriptors");
	metrics_sample(b, "process_open_fds", NULL, process_open_fds());
	metrics_family(b, "process_resident_memory_bytes", "gauge", "Resident memory");
	metrics_sample(b, "process_resident_memory_bytes", NULL, (double)process_rss_kib() * 1024);
}

char *fn_server_metrics(struct fn_server *s)
{
	struct fn_pool_stats *st = calloc(s->npools + 1, sizeof(*st));
	struct metrics_buf b;

	if (!st)
		return NULL;
	for (unsigned i = 0; i < s->npools; i++)
		fn_pool_get_stats(s->pools[i], &st[i]);
	metrics_init(&b);
	pool_counters(&b, st, s->npools, s->pools);
	pool_gauges(&b, st, s->npools, s->pools);
	for (unsigned h = 0; h < sizeof(hists) / sizeof(hists[0]); h++) {
		metrics_family(&b, hists[h].name, "histogram", hists[h].help);
		for (unsigned i = 0; i < s->npools; i++) {
			const char *l[] = { "function", s->pools[i]->f->name, NULL };

			metrics_histogram(&b, hists[h].name, l, hist_of(&st[i], h));
		}
	}
	process_figures(&b, s->vmm);
	free(st);
	if (b.err) {
		metrics_free(&b);
		return NULL;
	}
	return b.text;
}
