/*
 * The process floors: what the host pays to duplicate this much memory
 * without KVM.
 *
 *  process_fork  fork() of this process while it holds size bytes of touched
 *                anonymous memory in 4 KiB pages (MADV_NOHUGEPAGE, so that the
 *                figure does not depend on the host's THP setting), timed in
 *                the parent until fork() returns; the child _exit(0)s at once
 *                and is reaped outside the timing.
 *  memcpy        copying size bytes between two populated buffers (page
 *                faults excluded: a pure copy). Where source and destination
 *                together would take more than half the available memory, it
 *                is measured at 1 GiB and scaled linearly; the note says so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/layout.h"
#include "tools/bench/bench.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* MemAvailable from /proc/meminfo in bytes, 0 when unknown. */
static uint64_t mem_available(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return (uint64_t)kib * KiB;
}

/* An anonymous mapping of size bytes, every 4 KiB page written. */
static void *touched_area(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_NOHUGEPAGE);
	/* MADV_POPULATE_WRITE faults every page in one call (Linux 5.14+); else touch them. */
	if (madvise(p, size, MADV_POPULATE_WRITE) == 0)
		return p;
	if (errno == EINVAL) {
		for (uint64_t off = 0; off < size; off += PAGE_SIZE)
			((volatile uint8_t *)p)[off] = 1;
		return p;
	}
	munmap(p, size);
	errno = ENOMEM;
	return NULL;
}

static int fork_once(uint64_t *ns)
{
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(0);
	*ns = now_ns() - t0;
	if (pid < 0)
		return -errno;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int fork_loop(struct bench_ctx *ctx, unsigned si)
{
	uint64_t size = ctx->cfg->sizes[si];
	unsigned iters = iters_for_size(ctx->cfg, ctx->cfg->iters_fork, size);
	void *area = touched_area(size);
	struct samples s;
	int ret = 0;

	if (!area)
		return -errno;
	if (samples_init(&s, iters) < 0) {
		munmap(area, size);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < iters && !ret; i++) {
		uint64_t ns = 0;

		ret = fork_once(&ns);
		samples_add(&s, ns);
	}
	if (!ret)
		cell_set_samples(ctx, ROW_PROC_FORK, si, &s);
	samples_free(&s);
	munmap(area, size);
	return ret;
}

int bench_proc_fork(struct bench_ctx *ctx, unsigned si)
{
	uint64_t size = ctx->cfg->sizes[si], avail = mem_available();
	int ret;

	/* The child shares every page: only the parent's copy must fit, with room to spare. */
	if (avail && size + GiB > avail) {
		cell_note(ctx, ROW_PROC_FORK, si, "skipped: needs %llu MiB, %llu MiB available",
			  (unsigned long long)((size + GiB) / MiB),
			  (unsigned long long)(avail / MiB));
		return -ENOMEM;
	}
	ret = fork_loop(ctx, si);
	if (ret < 0)
		cell_note(ctx, ROW_PROC_FORK, si, "failed: %s", strerror(-ret));
	return ret;
}

/* Copy size bytes iters times between populated buffers. */
static int copy_loop(uint64_t size, unsigned iters, struct samples *s)
{
	void *src = touched_area(size), *dst = src ? touched_area(size) : NULL;

	if (!dst) {
		int err = -errno;

		if (src)
			munmap(src, size);
		return err;
	}
	for (unsigned i = 0; i < iters; i++) {
		uint64_t t0 = now_ns();

		memcpy(dst, src, size);
		samples_add(s, now_ns() - t0);
	}
	munmap(src, size);
	munmap(dst, size);
	return 0;
}

/* The 1 GiB memcpy cell of this run, or NULL. */
static const struct bench_cell *memcpy_1g(const struct bench_ctx *ctx)
{
	for (unsigned si = 0; si < ctx->cfg->nsizes; si++)
		if (ctx->cfg->sizes[si] == GiB && ctx->res.cell[ROW_MEMCPY][si].done)
			return &ctx->res.cell[ROW_MEMCPY][si];
	return NULL;
}

/* Measure at measured bytes; store p50/p99 multiplied by k. */
static int memcpy_measure(struct bench_ctx *ctx, unsigned si, uint64_t measured, double k)
{
	unsigned iters = iters_for_size(ctx->cfg, ctx->cfg->iters_copy, measured);
	const struct bench_cell *one = k > 1 ? memcpy_1g(ctx) : NULL;
	struct samples s;
	int ret;

	/* Scaling the 1 GiB row of this run keeps the two consistent (and saves a copy). */
	if (one) {
		cell_set(ctx, ROW_MEMCPY, si, one->n, k * one->p50, k * one->p99);
		return 0;
	}
	if (samples_init(&s, iters) < 0)
		return -ENOMEM;
	ret = copy_loop(measured, iters, &s);
	if (!ret)
		cell_set(ctx, ROW_MEMCPY, si, s.n, k * samples_pct(&s, 50) / 1e3,
			 k * samples_pct(&s, 99) / 1e3);
	samples_free(&s);
	return ret;
}

int bench_memcpy(struct bench_ctx *ctx, unsigned si)
{
	uint64_t size = ctx->cfg->sizes[si], avail = mem_available();
	/* Source and destination together within half of what is free: else scale 1 GiB. */
	bool scale = avail && 2 * size > avail / 2 && size > GiB;
	uint64_t measured = scale ? GiB : size;
	double k = (double)size / (double)measured;
	int ret = memcpy_measure(ctx, si, measured, k);
	char buf[16];

	if (ret < 0) {
		cell_note(ctx, ROW_MEMCPY, si, "failed: %s", strerror(-ret));
	} else if (scale) {
		ctx->res.cell[ROW_MEMCPY][si].scaled = true;
		cell_note(ctx, ROW_MEMCPY, si, "scaled x%.0f from %s (src+dst would not fit)", k,
			  size_str(measured, buf, sizeof(buf)));
	}
	return ret;
}
