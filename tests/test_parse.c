/* Sizes and counts as people type them on the command line. */
#include <criterion/criterion.h>
#include <errno.h>

#include "core/layout.h"
#include "core/parse.h"

static uint64_t size_of(const char *s)
{
	uint64_t v = 0;

	cr_assert_eq(parse_size(s, &v), 0, "'%s' should parse", s);
	return v;
}

Test(parse_size, suffixes)
{
	cr_assert_eq(size_of("16M"), 16 * MiB);
	cr_assert_eq(size_of("16m"), 16 * MiB);
	cr_assert_eq(size_of("16MiB"), 16 * MiB);
	cr_assert_eq(size_of("16MB"), 16 * MiB);
	cr_assert_eq(size_of("16G"), 16 * GiB);
	cr_assert_eq(size_of("512K"), 512 * KiB);
	cr_assert_eq(size_of("1T"), 1024 * GiB);
	cr_assert_eq(size_of("4096"), 4096);
	cr_assert_eq(size_of("0"), 0);
}

Test(parse_size, rejects_garbage)
{
	static const char *const bad[] = {
		"", "M", "-1", "+5M", " 5M", "5 M", "5X", "5MiBs", "5Mi", "5.5G", "0x10M", "1e9", "5KMB",
	};
	uint64_t v = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(parse_size(bad[i], &v), -EINVAL, "'%s' should be rejected", bad[i]);
	cr_expect_eq(parse_size(NULL, &v), -EINVAL);
}

Test(parse_size, overflow)
{
	uint64_t v = 0;

	cr_assert_eq(parse_size("17179869184G", &v), -ERANGE);
	cr_assert_eq(parse_size("99999999999999999999999", &v), -ERANGE);
	cr_assert_eq(parse_size("16777215T", &v), 0);
	cr_assert_eq(v, 16777215ULL << 40);
}

Test(parse_count, bounds)
{
	unsigned v = 0;

	cr_assert_eq(parse_count("4", 1, 64, &v), 0);
	cr_assert_eq(v, 4);
	cr_assert_eq(parse_count("0", 1, 64, &v), -ERANGE);
	cr_assert_eq(parse_count("65", 1, 64, &v), -ERANGE);
	cr_assert_eq(parse_count("4x", 1, 64, &v), -EINVAL);
	cr_assert_eq(parse_count("-4", 1, 64, &v), -EINVAL);
	cr_assert_eq(parse_count("", 1, 64, &v), -EINVAL);
	cr_assert_eq(parse_count("99999999999999999999", 1, 64, &v), -ERANGE);
}
