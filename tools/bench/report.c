/* The results as a table on stdout, CSV, JSON and gnuplot data. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/layout.h"
#include "tools/bench/bench.h"

static bool is_time(int row)
{
	return !strcmp(bench_rows[row].unit, "us");
}

/* A value for people: times in us/ms/s, others with their unit. */
static const char *fmt_value(int row, double v, char *buf, size_t len)
{
	if (!is_time(row))
		snprintf(buf, len, "%.0f %s", v, bench_rows[row].unit);
	else if (v < 1000)
		snprintf(buf, len, "%.1f us", v);
	else if (v < 1e6)
		snprintf(buf, len, "%.2f ms", v / 1e3);
	else
		snprintf(buf, len, "%.2f s", v / 1e6);
	return buf;
}

static const char *cell_note_text(const struct bench_cell *c, int row)
{
	if (c->note[0] || c->done)
		return c->note;
	return bench_rows[row].pending ? bench_rows[row].pending : "not measured";
}

static void table_row(const struct bench_ctx *ctx, int row, unsigned si)
{
	const struct bench_cell *c = &ctx->res.cell[row][si];
	int vs = bench_rows[row].ratio_vs;
	double ratio = cell_ratio(ctx, row, vs, si);
	char sz[16], p50[24] = "-", p99[24] = "-", r[16] = "-";

	if (c->done) {
		fmt_value(row, c->p50, p50, sizeof(p50));
		fmt_value(row, c->p99, p99, sizeof(p99));
	}
	if (ratio > 0)
		snprintf(r, sizeof(r), "%.3g", ratio);
	printf("%-20s %5s %5u %11s %11s %8s %-13s %s\n", bench_rows[row].name,
	       size_str(ctx->cfg->sizes[si], sz, sizeof(sz)), c->n, p50, p99, r,
	       vs >= 0 && ratio > 0 ? bench_rows[vs].name : "", cell_note_text(c, row));
}

static void ratio_table(const struct bench_ctx *ctx)
{
	char name[48], sz[16];

	printf("\n%-40s", "ratios (p50 / p50)");
	for (unsigned si = 0; si < ctx->cfg->nsizes; si++)
		printf(" %9s", size_str(ctx->cfg->sizes[si], sz, sizeof(sz)));
	printf("\n");
	for (unsigned k = 0; k < bench_nratios; k++) {
		const struct bench_ratio *br = &bench_ratios[k];

		snprintf(name, sizeof(name), "%s / %s", bench_rows[br->num].name,
			 bench_rows[br->den].name);
		printf("%-40s", name);
		for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
			double v = cell_ratio(ctx, br->num, br->den, si);

			if (v > 0)
				printf(" %9.3g", v);
			else
				printf(" %9s", "-");
		}
		printf("\n");
	}
}

/* A row nobody measures yet (no cell has data or a note): one line, not one per size. */
static bool row_pending(const struct bench_ctx *ctx, int row)
{
	for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
		const struct bench_cell *c = &ctx->res.cell[row][si];

		if (c->done || c->note[0])
			return false;
	}
	return bench_rows[row].pending != NULL;
}

/* ---- targets ---- */

/* The value a target judges at size si; false when it was not measured there. */
static bool target_value(const struct bench_ctx *ctx, const struct bench_target *t,
			 unsigned si, double *v)
{
	const struct bench_cell *c = &ctx->res.cell[t->row][si];
	const struct bench_cell *c2 = t->row2 >= 0 ? &ctx->res.cell[t->row2][si] : NULL;

	if (!c->done || (t->at_size && ctx->cfg->sizes[si] != t->at_size))
		return false;
	switch (t->kind) {
	case TARGET_RATIO_MAX:
		*v = cell_ratio(ctx, t->row, bench_rows[t->row].ratio_vs, si);
		return *v > 0;
	case TARGET_EXCESS_MAX:
		if (!c2 || !c2->done)
			return false;
		*v = c->p50 - c2->p50;
		return true;
	case TARGET_SPEEDUP_MIN:
		if (!c2 || !c2->done || c->p50 <= 0)
			return false;
		*v = c2->p50 / c->p50;
		return true;
	default:
		*v = c->p50;
		return true;
	}
}

static bool target_ok(const struct bench_target *t, double v)
{
	return t->kind == TARGET_P50_MIN || t->kind == TARGET_SPEEDUP_MIN ? v >= t->limit
									  : v <= t->limit;
}

/* p50 at the largest measured size over p50 at the smallest; 0 when fewer than 2. */
static double target_flatness(const struct bench_ctx *ctx, const struct bench_target *t,
			      unsigned *lo, unsigned *hi)
{
	int first = -1, last = -1;

	for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
		if (!ctx->res.cell[t->row][si].done)
			continue;
		if (first < 0)
			first = (int)si;
		last = (int)si;
	}
	if (first < 0 || first == last || ctx->res.cell[t->row][first].p50 <= 0)
		return 0;
	*lo = (unsigned)first;
	*hi = (unsigned)last;
	return ctx->res.cell[t->row][last].p50 / ctx->res.cell[t->row][first].p50;
}

/* What the target asks, in words. */
static void target_text(const struct bench_target *t, char *buf, size_t len)
{
	const char *name = bench_rows[t->row].name, *unit = bench_rows[t->row].unit;

	switch (t->kind) {
	case TARGET_RATIO_MAX:
		snprintf(buf, len, "%s / %s <= %g at every size", name,
			 bench_rows[bench_rows[t->row].ratio_vs].name, t->limit);
		break;
	case TARGET_P50_MAX:
		snprintf(buf, len, "%s p50 <= %g %s at every size", name, t->limit, unit);
		break;
	case TARGET_FLAT_MAX:
		snprintf(buf, len, "%s p50(largest) / p50(smallest) <= %g", name, t->limit);
		break;
	case TARGET_EXCESS_MAX:
		snprintf(buf, len, "%s - %s <= %g %s", name, bench_rows[t->row2].name, t->limit,
			 unit);
		break;
	case TARGET_P50_MIN:
		snprintf(buf, len, "%s >= %g", name, t->limit);
		break;
	case TARGET_SPEEDUP_MIN:
		snprintf(buf, len, "%s / %s >= %g", bench_rows[t->row2].name, name, t->limit);
		break;
	}
	if (t->at_size) {
		char sz[16];
		size_t used = strlen(buf);

		snprintf(buf + used, len - used, " at %s", size_str(t->at_size, sz, sizeof(sz)));
	}
}

/*
 * Judge one target: 1 met, 0 missed, -1 not measured. detail gets the values
 * per size ("64M 1.02, 16G 1.10").
 */
static int target_eval(const struct bench_ctx *ctx, const struct bench_target *t, char *detail,
		       size_t len)
{
	unsigned lo, hi, used = 0;
	char sz[16], sz2[16];
	int verdict = -1;
	double v;

	detail[0] = 0;
	if (t->kind == TARGET_FLAT_MAX) {
		v = target_flatness(ctx, t, &lo, &hi);
		if (v <= 0)
			return -1;
		snprintf(detail, len, "%.3g (%s / %s)", v,
			 size_str(ctx->cfg->sizes[hi], sz, sizeof(sz)),
			 size_str(ctx->cfg->sizes[lo], sz2, sizeof(sz2)));
		return target_ok(t, v);
	}
	for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
		if (!target_value(ctx, t, si, &v))
			continue;
		verdict = (verdict != 0) && target_ok(t, v);
		/* Three digits, but no exponents: 41329 KiB, not 4.13e+04. */
		if (used < len)
			used += (unsigned)snprintf(detail + used, len - used,
						   fabs(v) >= 1000 ? "%s%s %.0f" : "%s%s %.3g",
						   used ? ", " : "",
						   size_str(ctx->cfg->sizes[si], sz, sizeof(sz)), v);
	}
	return verdict;
}

static void targets_table(const struct bench_ctx *ctx)
{
	static const char *const verdicts[] = { "not measured", "missed", "met" };
	char what[128], detail[256];

	printf("\ntargets\n");
	for (unsigned k = 0; k < bench_ntargets; k++) {
		int verdict = target_eval(ctx, &bench_targets[k], detail, sizeof(detail));

		target_text(&bench_targets[k], what, sizeof(what));
		printf("target %-58s: %s%s%s%s\n", what, verdicts[verdict + 1],
		       detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
	}
}

void report_table(const struct bench_ctx *ctx)
{
	const char *kind = getenv("VMFORK_KVM_KIND");

	printf("KVM: %s\n\n", kind ? kind : "not said (run through tools/with-kvm.sh)");
	printf("%-20s %5s %5s %11s %11s %8s %-13s %s\n", "measurement", "size", "n", "p50", "p99",
	       "ratio", "vs (p50/p50)", "note");
	for (int row = 0; row < NROWS; row++) {
		if (row_pending(ctx, row)) {
			printf("%-20s %5s %5s %11s %11s %8s %-13s %s\n", bench_rows[row].name, "all",
			       "0", "-", "-", "-", "", bench_rows[row].pending);
			continue;
		}
		for (unsigned si = 0; si < ctx->cfg->nsizes; si++)
			table_row(ctx, row, si);
	}
	ratio_table(ctx);
	targets_table(ctx);
}

/* CSV fields never contain commas or quotes except in notes, which are quoted. */
static void csv_note(FILE *f, const char *note)
{
	fputc('"', f);
	for (; *note; note++) {
		if (*note == '"')
			fputc('"', f);
		fputc(*note, f);
	}
	fputc('"', f);
}

int report_csv(const struct bench_ctx *ctx, const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fprintf(f, "measurement,size_mib,unit,n,p50,p99,ratio,ratio_vs,scaled,note\n");
	for (int row = 0; row < NROWS; row++) {
		for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
			const struct bench_cell *c = &ctx->res.cell[row][si];
			int vs = bench_rows[row].ratio_vs;
			double ratio = cell_ratio(ctx, row, vs, si);

			fprintf(f, "%s,%llu,%s,%u,", bench_rows[row].name,
				(unsigned long long)(ctx->cfg->sizes[si] / MiB), bench_rows[row].unit,
				c->n);
			if (c->done)
				fprintf(f, "%.3f,%.3f,", c->p50, c->p99);
			else
				fprintf(f, ",,");
			if (ratio > 0)
				fprintf(f, "%.4f,%s,", ratio, bench_rows[vs].name);
			else
				fprintf(f, ",,");
			fprintf(f, "%d,", c->scaled);
			csv_note(f, cell_note_text(c, row));
			fputc('\n', f);
		}
	}
	return fclose(f) ? -errno : 0;
}

static json_t *json_cell(const struct bench_ctx *ctx, int row, unsigned si)
{
	const struct bench_cell *c = &ctx->res.cell[row][si];
	int vs = bench_rows[row].ratio_vs;
	double ratio = cell_ratio(ctx, row, vs, si);

	return json_pack("{s:s, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:b, s:s}",
			 "measurement", bench_rows[row].name,
			 "size_mib", (json_int_t)(ctx->cfg->sizes[si] / MiB),
			 "unit", bench_rows[row].unit, "n", (int)c->n,
			 "p50", c->done ? json_real(c->p50) : json_null(),
			 "p99", c->done ? json_real(c->p99) : json_null(),
			 "ratio", ratio > 0 ? json_real(ratio) : json_null(),
			 "ratio_vs", ratio > 0 ? json_string(bench_rows[vs].name) : json_null(),
			 "scaled", c->scaled, "note", cell_note_text(c, row));
}

static json_t *json_ratios(const struct bench_ctx *ctx)
{
	json_t *a = json_array();

	for (unsigned k = 0; a && k < bench_nratios; k++) {
		const struct bench_ratio *br = &bench_ratios[k];

		for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
			double v = cell_ratio(ctx, br->num, br->den, si);

			json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:o}",
				"num", bench_rows[br->num].name, "den", bench_rows[br->den].name,
				"size_mib", (json_int_t)(ctx->cfg->sizes[si] / MiB),
				"ratio", v > 0 ? json_real(v) : json_null()));
		}
	}
	return a;
}

static json_t *json_host(void)
{
	struct utsname u;

	uname(&u);
	return json_pack("{s:s, s:s, s:i, s:b}", "kernel", u.release, "machine", u.machine,
			 "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN),
			 "nested_pvm", access("/sys/module/kvm_pvm", F_OK) == 0);
}

static json_t *json_config(const struct bench_cfg *cfg)
{
	return json_pack("{s:b, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i, s:i, s:i}",
			 "quick", cfg->quick,
			 "iters_cheap", (int)cfg->iters_cheap, "iters_fork", (int)cfg->iters_fork,
			 "iters_copy", (int)cfg->iters_copy, "iters_qemu", (int)cfg->iters_qemu,
			 "min_iters", (int)cfg->min_iters, "qemu", cfg->qemu != NULL,
			 "iters_vmfork", (int)cfg->iters_vmfork, "iters_boot", (int)cfg->iters_boot,
			 "clones_k", (int)cfg->clones_k, "max_clones", (int)cfg->max_clones);
}

static json_t *json_targets(const struct bench_ctx *ctx)
{
	static const char *const verdicts[] = { "not measured", "missed", "met" };
	json_t *a = json_array();
	char what[128], detail[256];

	for (unsigned k = 0; a && k < bench_ntargets; k++) {
		int verdict = target_eval(ctx, &bench_targets[k], detail, sizeof(detail));

		target_text(&bench_targets[k], what, sizeof(what));
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "target", what,
						   "verdict", verdicts[verdict + 1],
						   "values", detail));
	}
	return a;
}

int report_json(const struct bench_ctx *ctx, const char *path)
{
	json_t *results = json_array(), *root;
	int ret;

	for (int row = 0; results && row < NROWS; row++)
		for (unsigned si = 0; si < ctx->cfg->nsizes; si++)
			json_array_append_new(results, json_cell(ctx, row, si));
	root = json_pack("{s:o, s:o, s:o, s:o, s:o}", "host", json_host(),
			 "config", json_config(ctx->cfg), "results", results,
			 "ratios", json_ratios(ctx), "targets", json_targets(ctx));
	if (!root)
		return -ENOMEM;
	ret = json_dump_file(root, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return ret ? -EIO : 0;
}

/*
 * One gnuplot data block per row of this unit that has data: a header line
 * (its title) and "size_mib p50" lines (times in ms); blocks are separated by
 * two blank lines so that plot.gp can address them with "index".
 */
int report_plot_data(const struct bench_ctx *ctx, const char *path, const char *unit)
{
	double scale = strcmp(unit, "us") ? 1 : 1e3;
	FILE *f = fopen(path, "we");
	bool first = true;

	if (!f)
		return -errno;
	for (int row = 0; row < NROWS; row++) {
		bool any = false;

		for (unsigned si = 0; si < ctx->cfg->nsizes; si++)
			any |= ctx->res.cell[row][si].done && ctx->res.cell[row][si].p50 > 0;
		if (strcmp(bench_rows[row].unit, unit) || !any)
			continue;
		/* Separators only between blocks: a trailing one would be an empty block. */
		fprintf(f, "%ssize_mib \"%s\"\n", first ? "" : "\n\n", bench_rows[row].name);
		first = false;
		for (unsigned si = 0; si < ctx->cfg->nsizes; si++) {
			const struct bench_cell *c = &ctx->res.cell[row][si];

			/* Log scale: a zero (an idle clone's private pages) cannot be drawn. */
			if (c->done && c->p50 > 0)
				fprintf(f, "%llu %.6f\n",
					(unsigned long long)(ctx->cfg->sizes[si] / MiB), c->p50 / scale);
		}
	}
	return fclose(f) ? -errno : 0;
}
