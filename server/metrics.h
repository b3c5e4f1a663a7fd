/*
 * Prometheus's text exposition format (version 0.0.4), written into a
 * growing buffer: `GET /metrics`. Debian has no C client library for it, so
 * this is the small part we need: families with HELP and TYPE, samples with
 * labels (values escaped as the format asks), and histograms.
 *
 * A histogram is kept by its owner (struct metrics_hist: fixed bucket
 * bounds, counts per bucket) and observed under the owner's lock; the
 * writer makes its buckets cumulative and adds the +Inf bucket, _sum and
 * _count.
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics_buf {
	char *text;                /* NUL-terminated */
	size_t len, cap;
	int err;                   /* the first error (-ENOMEM, -EINVAL): the text is not to be used */
};

#define METRICS_BUCKETS_MAX 24

struct metrics_hist {
	unsigned nbounds;                          /* upper bounds, ascending, at most BUCKETS_MAX */
	double bounds[METRICS_BUCKETS_MAX];
	uint64_t counts[METRICS_BUCKETS_MAX + 1];  /* per bucket, not cumulative; the last: above all */
	double sum;
	uint64_t count;
};

void metrics_init(struct metrics_buf *b);
void metrics_free(struct metrics_buf *b);
/*
 * "# HELP name help" and "# TYPE name type" (counter, gauge, histogram,
 * untyped): once per family, before its samples. A name that is not
 * [a-zA-Z_:][a-zA-Z0-9_:]* sets err to -EINVAL.
 */
void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help);
/* "name{k="v",...} value"; labels: key, value pairs, NULL-terminated (or NULL for none). */
void metrics_sample(struct metrics_buf *b, const char *name, const char *const *labels,
		    double value);
/* A histogram family's samples: name_bucket{...,le="B"} for each bound and +Inf, _sum, _count. */
void metrics_histogram(struct metrics_buf *b, const char *name, const char *const *labels,
		       const struct metrics_hist *h);

/* Bounds from first, each factor times the last (factor > 1), n of them. 0 or -EINVAL. */
int metrics_hist_exponential(struct metrics_hist *h, double first, double factor, unsigned n);
void metrics_hist_observe(struct metrics_hist *h, double value);

#endif
