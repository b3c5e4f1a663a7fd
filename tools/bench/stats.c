/* Samples, percentiles and result cells. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/layout.h"
#include "tools/bench/bench.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int samples_init(struct samples *s, unsigned cap)
{
	s->n = 0;
	s->cap = cap ? cap : 1;
	s->ns = calloc(s->cap, sizeof(s->ns[0]));
	return s->ns ? 0 : -ENOMEM;
}

void samples_free(struct samples *s)
{
	free(s->ns);
	memset(s, 0, sizeof(*s));
}

void samples_add(struct samples *s, uint64_t ns)
{
	/* The caller sized the array for its iterations; extra samples are dropped. */
	if (s->n < s->cap)
		s->ns[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t samples_pct(struct samples *s, double p)
{
	double rank;
	unsigned idx;

	if (!s->n)
		return 0;
	qsort(s->ns, s->n, sizeof(s->ns[0]), cmp_u64);
	/* Nearest rank: the smallest sample with at least p% of samples at or below it. */
	rank = ceil(p / 100.0 * s->n);
	idx = rank < 1 ? 0 : (unsigned)rank - 1;
	return s->ns[idx < s->n ? idx : s->n - 1];
}

void cell_set(struct bench_ctx *ctx, int row, unsigned si, unsigned n, double p50, double p99)
{
	struct bench_cell *c = &ctx->res.cell[row][si];

	c->done = true;
	c->n = n;
	c->p50 = p50;
	c->p99 = p99;
}

void cell_set_samples(struct bench_ctx *ctx, int row, unsigned si, struct samples *s)
{
	if (!s->n)
		return;
	cell_set(ctx, row, si, s->n, samples_pct(s, 50) / 1e3, samples_pct(s, 99) / 1e3);
}

void cell_note(struct bench_ctx *ctx, int row, unsigned si, const char *fmt, ...)
{
	struct bench_cell *c = &ctx->res.cell[row][si];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->note, sizeof(c->note), fmt, ap);
	va_end(ap);
}

unsigned iters_for_size(const struct bench_cfg *cfg, unsigned base, uint64_t size)
{
	uint64_t n = base;

	/* Above 1 GiB the cost is linear in size: keep the time per size about constant. */
	if (size > GiB)
		n = n * GiB / size;
	return n < cfg->min_iters ? cfg->min_iters : (unsigned)n;
}

const char *size_str(uint64_t size, char *buf, unsigned len)
{
	if (size >= GiB && size % GiB == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(size / GiB));
	else
		snprintf(buf, len, "%lluM", (unsigned long long)(size / MiB));
	return buf;
}

double cell_ratio(const struct bench_ctx *ctx, int row, int vs, unsigned si)
{
	const struct bench_cell *a, *b;

	if (row < 0 || vs < 0)
		return 0;
	a = &ctx->res.cell[row][si];
	b = &ctx->res.cell[vs][si];
	if (!a->done || !b->done || b->p50 <= 0)
		return 0;
	return a->p50 / b->p50;
}
