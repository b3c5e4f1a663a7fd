/* The Prometheus text writer (server/metrics.h): exact text, escaping, histograms, bad names. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>

#include "server/metrics.h"

Test(metrics, family_and_samples)
{
	const char *const labels[] = { "function", "hello", "status", "200", NULL };
	struct metrics_buf b;

	metrics_init(&b);
	metrics_family(&b, "vmfork_invocations_total", "counter", "Invocations, by status.");
	metrics_sample(&b, "vmfork_invocations_total", labels, 12);
	metrics_family(&b, "vmfork_pool_warm", "gauge", "Warm clones.");
	metrics_sample(&b, "vmfork_pool_warm", NULL, 3);
	metrics_sample(&b, "vmfork_ratio", NULL, 0.25);
	cr_assert_eq(b.err, 0);
	cr_expect_str_eq(b.text,
			 "# HELP vmfork_invocations_total Invocations, by status.\n"
			 "# TYPE vmfork_invocations_total counter\n"
			 "vmfork_invocations_total{function=\"hello\",status=\"200\"} 12\n"
			 "# HELP vmfork_pool_warm Warm clones.\n"
			 "# TYPE vmfork_pool_warm gauge\n"
			 "vmfork_pool_warm 3\n"
			 "vmfork_ratio 0.25\n");
	metrics_free(&b);
}

Test(metrics, values_and_labels_are_escaped)
{
	const char *const labels[] = { "name", "a\"b\\c\nd", NULL };
	struct metrics_buf b;

	metrics_init(&b);
	metrics_family(&b, "x", "untyped", "line\\one\nline two");
	metrics_sample(&b, "x", labels, NAN);
	metrics_sample(&b, "x", NULL, INFINITY);
	metrics_sample(&b, "x", NULL, -INFINITY);
	metrics_sample(&b, "x", NULL, 1e20);
	cr_assert_eq(b.err, 0);
	cr_expect_str_eq(b.text,
			 "# HELP x line\\\\one\\nline two\n"
			 "# TYPE x untyped\n"
			 "x{name=\"a\\\"b\\\\c\\nd\"} NaN\n"
			 "x +Inf\n"
			 "x -Inf\n"
			 "x 1e+20\n");
	metrics_free(&b);
}

Test(metrics, histogram_buckets_are_cumulative)
{
	const char *const labels[] = { "phase", "fork", NULL };
	struct metrics_hist h;
	struct metrics_buf b;

	cr_assert_eq(metrics_hist_exponential(&h, 0.1, 10, 3), 0); /* 0.1, 1, 10 */
	metrics_hist_observe(&h, 0.0625);
	metrics_hist_observe(&h, 1); /* on a bound: that bucket (le) */
	metrics_hist_observe(&h, 2.5);
	metrics_hist_observe(&h, 64);
	metrics_init(&b);
	metrics_histogram(&b, "lat_seconds", labels, &h);
	cr_assert_eq(b.err, 0);
	cr_expect_str_eq(b.text,
			 "lat_seconds_bucket{phase=\"fork\",le=\"0.1\"} 1\n"
			 "lat_seconds_bucket{phase=\"fork\",le=\"1\"} 2\n"
			 "lat_seconds_bucket{phase=\"fork\",le=\"10\"} 3\n"
			 "lat_seconds_bucket{phase=\"fork\",le=\"+Inf\"} 4\n"
			 "lat_seconds_sum{phase=\"fork\"} 67.5625\n"
			 "lat_seconds_count{phase=\"fork\"} 4\n");
	metrics_free(&b);
}

Test(metrics, bad_names_and_bounds_are_refused)
{
	const char *const bad_label[] = { "9x", "v", NULL };
	struct metrics_hist h;
	struct metrics_buf b;

	metrics_init(&b);
	metrics_sample(&b, "bad-name", NULL, 1);
	cr_expect_eq(b.err, -EINVAL);
	metrics_free(&b);
	metrics_init(&b);
	metrics_sample(&b, "ok", bad_label, 1);
	cr_expect_eq(b.err, -EINVAL, "a label name starting with a digit");
	metrics_free(&b);
	cr_expect_eq(metrics_hist_exponential(&h, 0, 2, 4), -EINVAL);
	cr_expect_eq(metrics_hist_exponential(&h, 1, 1, 4), -EINVAL);
	cr_expect_eq(metrics_hist_exponential(&h, 1, 2, METRICS_BUCKETS_MAX + 1), -EINVAL);
}
