/*
 * What idle clones cost the host, and how many of them it holds.
 *
 * The template is idle.elf, paused after it reported (it halts with interrupts
 * off, so its clones sleep in KVM and use no CPU), forked once untimed to
 * freeze its base. Clones are forked cold (no warm shells) in batches of 50,
 * started, and left 300 ms to halt. Each figure is the median of WEIGH_ROUNDS
 * rounds (one with --quick); the worst round goes in the p99 column.
 *
 * K is cfg->clones_k up to 1 GiB, fewer above (at least 10).
 *
 *  clone_host_mem  the drop of /proc/meminfo's MemAvailable over K clones / K:
 *                  everything the host pays, kernel memory included (KVM's VM
 *                  and vCPU structures, page tables, thread stacks). The host
 *                  is shared, so other work moves it too: the note gives the
 *                  rise when the clones go, a second reading of the same cost.
 *  clone_kernel_mem  the part of it the kernel accounts for: the growth of
 *                  VmallocUsed (kernel stacks included), Slab and
 *                  (Sec)PageTables / K.
 *  clone_uss_idle  the growth of this process's USS (smaps_rollup
 *                  Private_Clean + Private_Dirty) / K: the VMM's own memory.
 *  clone_private   the guest pages the clones wrote (vm_private_bytes) / K.
 *  max_clones      (256 MiB only) clones forked in batches of 50 until
 *                  cfg->max_clones, a failed fork, or MemAvailable < 2 GiB;
 *                  RLIMIT_NOFILE raised to its hard limit first.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/layout.h"
#include "core/process_stats.h"
#include "fork/fork.h"
#include "fork/vmm.h"
#include "tools/bench/bench.h"
#include "vmm/vm.h"

#define CLONE_BATCH      50
#define SETTLE_MS        300
#define WEIGH_ROUNDS     3      /* the host is shared: the median round counts */
#define MIN_AVAILABLE    (2 * GiB)

/* The /proc/meminfo fields that say where a clone's memory went, in KiB. */
struct meminfo {
	long long avail, slab, page_tables, sec_page_tables, kernel_stack, vmalloc;
};

static int meminfo_read(struct meminfo *m)
{
	static const char *const keys[] = {
		"MemAvailable:", "Slab:", "PageTables:", "SecPageTables:", "KernelStack:",
		"VmallocUsed:",
	};
	long long *vals[] = { &m->avail, &m->slab, &m->page_tables, &m->sec_page_tables,
			      &m->kernel_stack, &m->vmalloc };
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];

	memset(m, 0, sizeof(*m));
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		for (unsigned k = 0; k < 6; k++)
			if (!strncmp(line, keys[k], strlen(keys[k])))
				*vals[k] = atoll(line + strlen(keys[k]));
	fclose(f);
	return m->avail ? 0 : -EIO;
}

/*
 * /proc/meminfo once MemAvailable holds still (moves less than STILL_KIB in
 * STILL_MS, at most STILL_TRIES tries): memory the runner before this one
 * freed, and clones' deferred teardown, still move it for a while.
 */
#define STILL_KIB   1024
#define STILL_MS    100
#define STILL_TRIES 30

static int meminfo_still(struct meminfo *m)
{
	struct meminfo prev;
	int ret = meminfo_read(&prev);

	for (unsigned i = 0; !ret && i < STILL_TRIES; i++) {
		sleep_ms(STILL_MS);
		ret = meminfo_read(m);
		if (!ret && llabs(m->avail - prev.avail) < STILL_KIB)
			return 0;
		prev = *m;
	}
	*m = prev;
	return ret;
}

struct clone_set {
	struct vm **vm;
	unsigned n, cap;
};

static int clones_init(struct clone_set *cs, unsigned cap)
{
	cs->n = 0;
	cs->cap = cap;
	cs->vm = calloc(cap, sizeof(*cs->vm));
	return cs->vm ? 0 : -ENOMEM;
}

/* Fork up to n more started clones of tmpl in one batch. */
static int clones_batch(struct vm *tmpl, struct clone_set *cs, unsigned n)
{
	struct fork_request req = { .count = n, .start_children = true };
	struct fork_stats st;
	int ret;

	if (n > cs->cap - cs->n)
		n = cs->cap - cs->n;
	req.count = n;
	ret = n ? vm_fork(tmpl, &req, cs->vm + cs->n, &st) : 0;
	if (!ret)
		cs->n += n;
	return ret;
}

/* Teardown workers: a KVM VM's destruction mostly waits (kthreads, RCU), so several overlap. */
#define DROP_THREADS 4

struct dropper {
	struct fork_env *env;
	struct clone_set *cs;
	unsigned next;          /* atomic: the next clone to destroy */
};

static void *drop_worker(void *arg)
{
	struct dropper *d = arg;
	unsigned i;

	while ((i = __atomic_fetch_add(&d->next, 1, __ATOMIC_RELAXED)) < d->cs->n)
		fork_env_drop(d->env, d->cs->vm[i], true);
	return NULL;
}

/* Destroy every clone; returns the time it took in ns. */
static uint64_t clones_drop(struct fork_env *env, struct clone_set *cs)
{
	struct dropper d = { .env = env, .cs = cs };
	pthread_t t[DROP_THREADS];
	unsigned started = 0;
	uint64_t t0 = now_ns();

	while (started < DROP_THREADS && cs->n > 1 &&
	       pthread_create(&t[started], NULL, drop_worker, &d) == 0)
		started++;
	drop_worker(&d);
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	cs->n = 0;
	return now_ns() - t0;
}

static void clones_free(struct clone_set *cs)
{
	free(cs->vm);
	cs->vm = NULL;
}

/* A paused idle template with a frozen base. */
static int idle_template(struct fork_env *env, uint64_t size, struct vm **out)
{
	struct clone_set one;
	int ret = fork_env_boot(env, "idle", NULL, size, out);

	if (!ret)
		ret = vm_pause(*out);
	if (!ret)
		ret = clones_init(&one, 1);
	if (ret < 0)
		return ret;
	ret = clones_batch(*out, &one, 1);
	clones_drop(env, &one);
	clones_free(&one);
	return ret;
}

/* ---- clone_host_mem, clone_uss_idle, clone_private ---- */

struct weighing {
	struct meminfo m0, m1, m2;
	long long uss0, uss1;
	uint64_t private_bytes;
	unsigned fds0, fds1;
	uint64_t drop_ns;
};

static int weigh(struct fork_env *env, struct vm *tmpl, struct clone_set *cs, unsigned k,
		 struct weighing *w)
{
	int ret = 0;

	if (meminfo_still(&w->m0) < 0)
		return -EIO;
	w->fds0 = process_open_fds();
	w->uss0 = process_uss_kib();
	while (cs->n < k && !ret)
		ret = clones_batch(tmpl, cs, k - cs->n < CLONE_BATCH ? k - cs->n : CLONE_BATCH);
	sleep_ms(SETTLE_MS);
	w->fds1 = process_open_fds();
	w->uss1 = process_uss_kib();
	if (!ret && (meminfo_still(&w->m1) < 0 || w->uss0 < 0 || w->uss1 < 0))
		ret = -EIO;
	for (unsigned i = 0; i < cs->n; i++) {
		ret = ret ? ret : vm_stopping(cs->vm[i]) ? -EIO : 0;
		w->private_bytes += vm_private_bytes(cs->vm[i]);
	}
	w->drop_ns = clones_drop(env, cs);
	if (!ret && meminfo_still(&w->m2) < 0)
		ret = -EIO;
	return ret;
}

/* One round's figures per clone, in KiB (fds: a count, drop_ms: ms). */
struct per_clone {
	double host, back, vmalloc, slab, stacks, pt, uss, priv, fds, drop_ms;
};

static void per_clone(const struct weighing *w, unsigned k, struct per_clone *pc)
{
	const struct meminfo *a = &w->m0, *b = &w->m1;

	pc->host = (double)(a->avail - b->avail) / k;
	pc->back = (double)(w->m2.avail - b->avail) / k;
	pc->vmalloc = (double)(b->vmalloc - a->vmalloc) / k;
	pc->slab = (double)(b->slab - a->slab) / k;
	pc->stacks = (double)(b->kernel_stack - a->kernel_stack) / k;
	pc->pt = (double)(b->page_tables - a->page_tables + b->sec_page_tables -
			  a->sec_page_tables) / k;
	pc->uss = (double)(w->uss1 - w->uss0) / k;
	pc->priv = (double)w->private_bytes / KiB / k;
	pc->fds = (double)(w->fds1 - w->fds0) / k;
	pc->drop_ms = w->drop_ns / 1e6 / k;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median (lower) and maximum over the rounds of the field at offset off. */
static double field(const struct per_clone *pc, unsigned n, size_t off, double *max)
{
	double v[WEIGH_ROUNDS];

	for (unsigned i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&pc[i] + off);
	qsort(v, n, sizeof(v[0]), cmp_double);
	if (max)
		*max = v[n - 1];
	return v[(n - 1) / 2];
}

#define FIELD(pc, n, name, max) field(pc, n, offsetof(struct per_clone, name), max)

static void set_field(struct bench_ctx *ctx, unsigned si, int row, const struct per_clone *pc,
		      unsigned n, size_t off)
{
	double max, p50 = field(pc, n, off, &max);

	cell_set(ctx, row, si, n, p50, max);
}

/* Each row: the median round (p50) and the worst (p99 column); n counts rounds. */
static void weigh_cells(struct bench_ctx *ctx, unsigned si, struct per_clone *pc, unsigned n,
			unsigned k)
{
	double kernel[WEIGH_ROUNDS], kmax;

	/* Kernel stacks are vmalloc'ed (x86-64's VMAP_STACK): inside VmallocUsed already. */
	for (unsigned i = 0; i < n; i++)
		kernel[i] = pc[i].vmalloc + pc[i].slab + pc[i].pt;
	qsort(kernel, n, sizeof(kernel[0]), cmp_double);
	kmax = kernel[n - 1];
	set_field(ctx, si, ROW_CLONE_HOST, pc, n, offsetof(struct per_clone, host));
	cell_note(ctx, ROW_CLONE_HOST, si, "%u rounds of %u clones; %.0f KiB back at teardown",
		  n, k, FIELD(pc, n, back, NULL));
	cell_set(ctx, ROW_CLONE_KERNEL, si, n, kernel[(n - 1) / 2], kmax);
	/* KVM's per-memslot arrays (rmap, write tracking) are vmalloc'ed. */
	cell_note(ctx, ROW_CLONE_KERNEL, si,
		  "vmalloc %.0f (of it kernel stacks %.0f) slab %.0f page tables %.0f",
		  FIELD(pc, n, vmalloc, NULL), FIELD(pc, n, stacks, NULL),
		  FIELD(pc, n, slab, NULL), FIELD(pc, n, pt, NULL));
	set_field(ctx, si, ROW_CLONE_USS, pc, n, offsetof(struct per_clone, uss));
	cell_note(ctx, ROW_CLONE_USS, si, "%.1f fds per clone; teardown %.1f ms per clone (%d threads)",
		  FIELD(pc, n, fds, NULL), FIELD(pc, n, drop_ms, NULL), DROP_THREADS + 1);
	set_field(ctx, si, ROW_CLONE_PRIVATE, pc, n, offsetof(struct per_clone, priv));
}

/* Weigh at 256 MiB always, at every size in a full run. */
static bool weigh_here(const struct bench_cfg *cfg, uint64_t size)
{
	return size == 256 * MiB || !cfg->quick;
}

/*
 * Clones to weigh: fewer above 1 GiB, where each costs more to make and to
 * tear down (KVM's per-memslot arrays grow with RAM on a shadow-paging host).
 */
static unsigned clones_for_size(const struct bench_cfg *cfg, uint64_t size)
{
	uint64_t k = cfg->clones_k;

	if (size > GiB)
		k = k * GiB / size;
	return k < 10 ? 10 : (unsigned)k;
}

static int weigh_row(struct bench_ctx *ctx, unsigned si, struct fork_env *env,
		     struct vm *tmpl)
{
	unsigned k = clones_for_size(ctx->cfg, ctx->cfg->sizes[si]);
	unsigned rounds = ctx->cfg->quick ? 1 : WEIGH_ROUNDS;
	struct per_clone pc[WEIGH_ROUNDS];
	struct clone_set cs;
	int ret = clones_init(&cs, k);

	for (unsigned r = 0; r < rounds && !ret; r++) {
		struct weighing w = { 0 };

		ret = weigh(env, tmpl, &cs, k, &w);
		per_clone(&w, k, &pc[r]);
	}
	if (!ret)
		weigh_cells(ctx, si, pc, rounds, k);
	else
		cell_note(ctx, ROW_CLONE_HOST, si, "failed: %s", strerror(-ret));
	clones_drop(env, &cs);
	clones_free(&cs);
	return ret;
}

/* ---- max_clones ---- */

static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &lim);
	}
}

/* Fork until the cap, a failure or low memory; why says which. */
static void fill_host(struct vm *tmpl, struct clone_set *cs, char *why, size_t len)
{
	struct rlimit lim = { 0 };
	struct meminfo m;

	getrlimit(RLIMIT_NOFILE, &lim);
	while (cs->n < cs->cap) {
		int ret;

		if (meminfo_read(&m) == 0 && (uint64_t)m.avail * KiB < MIN_AVAILABLE) {
			snprintf(why, len, "MemAvailable %lld MiB < 2 GiB", m.avail / 1024);
			return;
		}
		ret = clones_batch(tmpl, cs, CLONE_BATCH);
		if (ret < 0) {
			snprintf(why, len, "vm_fork: %s (fd limit %llu)", strerror(-ret),
				 (unsigned long long)lim.rlim_cur);
			return;
		}
	}
	meminfo_read(&m);
	snprintf(why, len, "reached the cap of %u; MemAvailable %lld MiB left", cs->cap,
		 m.avail / 1024);
}

static int max_clones_row(struct bench_ctx *ctx, unsigned si, struct fork_env *env,
			  struct vm *tmpl)
{
	char why[BENCH_NOTE_MAX - 32] = "";
	struct clone_set cs;
	unsigned alive = 0;
	uint64_t drop_ns;
	int ret = clones_init(&cs, ctx->cfg->max_clones);

	if (ret < 0)
		return ret;
	raise_fd_limit();
	fill_host(tmpl, &cs, why, sizeof(why));
	sleep_ms(SETTLE_MS);
	for (unsigned i = 0; i < cs.n; i++)
		alive += !vm_stopping(cs.vm[i]);
	drop_ns = clones_drop(env, &cs);
	cell_set(ctx, ROW_MAX_CLONES, si, 1, alive, alive);
	cell_note(ctx, ROW_MAX_CLONES, si, "%s; teardown %.1f s", why, drop_ns / 1e9);
	clones_free(&cs);
	return 0;
}

int bench_clones(struct bench_ctx *ctx, unsigned si)
{
	uint64_t size = ctx->cfg->sizes[si];
	bool max_here = size == 256 * MiB;
	struct fork_env env;
	struct vm *tmpl;
	int ret;

	if (!weigh_here(ctx->cfg, size)) {
		cell_note(ctx, ROW_CLONE_HOST, si, "measured at 256M only with --quick");
		return 0;
	}
	if (!ctx->have_kvm) {
		cell_note(ctx, ROW_CLONE_HOST, si, "no usable /dev/kvm");
		return -ENODEV;
	}
	ret = fork_env_init(&env, ctx->cfg);
	if (!ret)
		ret = idle_template(&env, size, &tmpl);
	if (!ret)
		ret = weigh_row(ctx, si, &env, tmpl);
	if (!ret && max_here)
		ret = max_clones_row(ctx, si, &env, tmpl);
	if (ret < 0 && !ctx->res.cell[ROW_CLONE_HOST][si].note[0])
		cell_note(ctx, ROW_CLONE_HOST, si, "failed: %s", strerror(-ret));
	fork_env_fini(&env);
	return ret;
}
