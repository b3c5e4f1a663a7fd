/* Prometheus's text format (server/metrics.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"

void metrics_init(struct metrics_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void metrics_free(struct metrics_buf *b)
{
	free(b->text);
	metrics_init(b);
}

static bool grow(struct metrics_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *text;

	if (b->err)
		return false;
	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap == b->cap)
		return true;
	text = realloc(b->text, cap);
	if (!text) {
		b->err = -ENOMEM;
		return false;
	}
	b->text = text;
	b->cap = cap;
	return true;
}

static void put(struct metrics_buf *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->text + b->len, s, n);
	b->len += n;
	b->text[b->len] = '\0';
}

static void puts_(struct metrics_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* s with backslash and newline escaped, and double quotes too in a label value. */
static void put_escaped(struct metrics_buf *b, const char *s, bool quotes)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(b, "\\\\");
		else if (*s == '\n')
			puts_(b, "\\n");
		else if (*s == '"' && quotes)
			puts_(b, "\\\"");
		else
			put(b, s, 1);
	}
}

static bool valid_name(const char *name, bool colon)
{
	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return false;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
		      (*name >= '0' && *name <= '9') || *name == '_' || (colon && *name == ':')))
			return false;
	return true;
}

static void check_name(struct metrics_buf *b, const char *name, bool colon)
{
	if (!valid_name(name, colon) && !b->err)
		b->err = -EINVAL;
}

void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
	check_name(b, name, true);
	puts_(b, "# HELP ");
	puts_(b, name);
	puts_(b, " ");
	put_escaped(b, help ? help : "", false);
	puts_(b, "\n# TYPE ");
	puts_(b, name);
	puts_(b, " ");
	puts_(b, type);
	puts_(b, "\n");
}

/* The shortest of %.15g and %.17g that reads back as v: 0.1, not 0.10000000000000001. */
static void shortest(char *out, size_t size, double v)
{
	snprintf(out, size, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, size, "%.17g", v);
}

/* A value as the format spells it: NaN, +Inf, -Inf, integers without an exponent. */
static void put_value(struct metrics_buf *b, double v)
{
	char num[32];

	if (isnan(v))
		snprintf(num, sizeof(num), "NaN");
	else if (isinf(v))
		snprintf(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(num, sizeof(num), "%.0f", v);
	else
		shortest(num, sizeof(num), v);
	puts_(b, num);
}

/* {k="v",...} with one more label (extra_key, extra_value) when extra_key is not NULL. */
static void put_labels(struct metrics_buf *b, const char *const *labels, const char *extra_key,
		       const char *extra_value)
{
	bool any = false;

	for (; labels && labels[0]; labels += 2) {
		check_name(b, labels[0], false);
		puts_(b, any ? "," : "{");
		puts_(b, labels[0]);
		puts_(b, "=\"");
		put_escaped(b, labels[1] ? labels[1] : "", true);
		puts_(b, "\"");
		any = true;
	}
	if (extra_key) {
		puts_(b, any ? "," : "{");
		puts_(b, extra_key);
		puts_(b, "=\"");
		puts_(b, extra_value);
		puts_(b, "\"");
		any = true;
	}
	if (any)
		puts_(b, "}");
}

static void sample(struct metrics_buf *b, const char *name, const char *suffix,
		   const char *const *labels, const char *extra_key, const char *extra_value,
		   double value)
{
	check_name(b, name, true);
	puts_(b, name);
	puts_(b, suffix);
	put_labels(b, labels, extra_key, extra_value);
	puts_(b, " ");
	put_value(b, value);
	puts_(b, "\n");
}

void metrics_sample(struct metrics_buf *b, const char *name, const char *const *labels,
		    double value)
{
	sample(b, name, "", labels, NULL, NULL, value);
}

void metrics_histogram(struct metrics_buf *b, const char *name, const char *const *labels,
		       const struct metrics_hist *h)
{
	uint64_t cumulative = 0;
	char le[32];

	for (unsigned i = 0; i < h->nbounds && i < METRICS_BUCKETS_MAX; i++) {
		cumulative += h->counts[i];
		shortest(le, sizeof(le), h->bounds[i]);
		sample(b, name, "_bucket", labels, "le", le, (double)cumulative);
	}
	sample(b, name, "_bucket", labels, "le", "+Inf", (double)h->count);
	sample(b, name, "_sum", labels, NULL, NULL, h->sum);
	sample(b, name, "_count", labels, NULL, NULL, (double)h->count);
}

int metrics_hist_exponential(struct metrics_hist *h, double first, double factor, unsigned n)
{
	memset(h, 0, sizeof(*h));
	if (!(first > 0) || !(factor > 1) || !n || n > METRICS_BUCKETS_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		h->bounds[i] = i ? h->bounds[i - 1] * factor : first;
	h->nbounds = n;
	return 0;
}

void metrics_hist_observe(struct metrics_hist *h, double value)
{
	unsigned i = 0;

	while (i < h->nbounds && value > h->bounds[i])
		i++;
	h->counts[i]++;
	h->sum += value;
	h->count++;
}
