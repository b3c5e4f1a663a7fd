/*
 * The AML writer, byte for byte. Every expected encoding here is worked out
 * by hand from ACPI 6.5 chapter 20 (the AML grammar) and 6.4 (resource
 * descriptors); the comments show the working.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aml.h"

static uint8_t aml_buf[8192];

static struct aml aml_new(void)
{
	struct aml a;

	memset(aml_buf, 0xcc, sizeof(aml_buf));
	aml_init(&a, aml_buf, sizeof(aml_buf));
	return a;
}

static void aml_dump(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n && i < 64; i++)
		out += sprintf(out, "%02x ", p[i]);
	*out = 0;
}

/* a holds exactly want[0..n), and aml_finish says n. */
static void aml_expect(struct aml *a, const uint8_t *want, size_t n)
{
	char got_s[200], want_s[200];
	int len = aml_finish(a);

	cr_assert_eq(len, (int)n, "aml_finish: %d, want %zu bytes", len, n);
	aml_dump(a->buf, n, got_s);
	aml_dump(want, n, want_s);
	cr_assert(!memcmp(a->buf, want, n), "got  %s\nwant %s", got_s, want_s);
}

#define EXPECT(a, ...)                                                           \
	do {                                                                     \
		static const uint8_t want_[] = { __VA_ARGS__ };                  \
		aml_expect((a), want_, sizeof(want_));                            \
	} while (0)

Test(aml, name_eisaid)
{
	struct aml a = aml_new();

	/*
	 * NameOp, "_HID", DWordPrefix, then "PNP0501" packed: P=0x10, N=0x0e,
	 * P=0x10 as 5-bit letters: 0 10000 01 | 110 10000 = 0x41 0xd0, then 0x05 0x01.
	 */
	aml_name_eisaid(&a, "_HID", "PNP0501");
	EXPECT(&a, 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01);
}

Test(aml, eisaid_is_always_a_dword)
{
	struct aml a = aml_new();

	/* "PNP0000" packs to 0x0000d041: still 4 bytes, as an ID is. */
	aml_name_eisaid(&a, "_CID", "PNP0000");
	EXPECT(&a, 0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x00, 0x00);
}

Test(aml, name_integers_take_the_shortest_encoding)
{
	struct aml a = aml_new();

	aml_name_int(&a, "A", 0);            /* ZeroOp */
	aml_name_int(&a, "B", 1);            /* OneOp */
	aml_name_int(&a, "C", 0xff);         /* BytePrefix */
	aml_name_int(&a, "D", 0x100);        /* WordPrefix */
	aml_name_int(&a, "E", 0x10000);      /* DWordPrefix */
	aml_name_int(&a, "F", 0x100000000);  /* QWordPrefix */
	EXPECT(&a, 0x08, 'A', '_', '_', '_', 0x00,
	       0x08, 'B', '_', '_', '_', 0x01,
	       0x08, 'C', '_', '_', '_', 0x0a, 0xff,
	       0x08, 'D', '_', '_', '_', 0x0b, 0x00, 0x01,
	       0x08, 'E', '_', '_', '_', 0x0c, 0x00, 0x00, 0x01, 0x00,
	       0x08, 'F', '_', '_', '_', 0x0e, 0, 0, 0, 0, 1, 0, 0, 0);
}

Test(aml, name_string)
{
	struct aml a = aml_new();

	/* StringPrefix, the ASCII bytes, NullChar. */
	aml_name_string(&a, "_HID", "ACPI0013");
	EXPECT(&a, 0x08, '_', 'H', 'I', 'D', 0x0d, 'A', 'C', 'P', 'I', '0', '0', '1', '3', 0x00);
}

Test(aml, name_paths)
{
	struct aml a = aml_new();

	aml_name_int(&a, "\\_S5", 0);           /* RootChar, one NameSeg */
	aml_name_int(&a, "^X", 0);               /* ParentPrefix */
	aml_name_int(&a, "\\_SB.VGEN", 0);      /* DualNamePrefix */
	aml_name_int(&a, "\\_SB.PCI0.ISA", 0);  /* MultiNamePrefix, SegCount 3 */
	EXPECT(&a, 0x08, 0x5c, '_', 'S', '5', '_', 0x00,
	       0x08, 0x5e, 'X', '_', '_', '_', 0x00,
	       0x08, 0x5c, 0x2e, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x00,
	       0x08, 0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_',
	       0x00);
}

Test(aml, scope_root_is_a_null_name)
{
	struct aml a = aml_new();

	/* ScopeOp, PkgLength 3 (itself, RootChar, NullName). */
	aml_scope(&a, "\\");
	aml_end(&a);
	EXPECT(&a, 0x10, 0x03, 0x5c, 0x00);
}

Test(aml, device_with_names)
{
	struct aml a = aml_new();

	/* ExtOpPrefix DeviceOp, PkgLength 1 + 4 + 6 = 11. */
	aml_device(&a, "COM1");
	aml_name_int(&a, "_UID", 1);
	aml_end(&a);
	EXPECT(&a, 0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x01);
}

Test(aml, nested_scopes)
{
	struct aml a = aml_new();

	/* Device: 1 + 4 = 5; Scope: 1 + 5 (\_SB_) + 7 (5b 82, the device's 5) = 13. */
	aml_scope(&a, "\\_SB");
	aml_device(&a, "DEV0");
	aml_end(&a);
	aml_end(&a);
	EXPECT(&a, 0x10, 0x0d, 0x5c, '_', 'S', 'B', '_', 0x5b, 0x82, 0x05, 'D', 'E', 'V', '0');
}

Test(aml, name_package)
{
	struct aml a = aml_new();
	const uint64_t s5[] = { 5, 0 };

	/* PackageOp, PkgLength 5 (itself, NumElements, 0a 05, 00). */
	aml_name_package(&a, "_S5", s5, 2);
	EXPECT(&a, 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00);
}

Test(aml, method_return_package)
{
	struct aml a = aml_new();
	const uint64_t v[] = { 1, 0x1000 };

	/*
	 * MethodOp, PkgLength 1 + 4 + 1 + 8 = 14; flags: 2 args, serialized = 0x0a.
	 * ReturnOp, PackageOp, PkgLength 1 + 1 + 1 + 3 = 6.
	 */
	aml_method(&a, "_STA", 2, true);
	aml_return_package(&a, v, 2);
	aml_end(&a);
	EXPECT(&a, 0x14, 0x0e, '_', 'S', 'T', 'A', 0x0a,
	       0xa4, 0x12, 0x06, 0x02, 0x01, 0x0b, 0x00, 0x10);
}

Test(aml, resource_template)
{
	struct aml a = aml_new();

	/*
	 * IO: 47, Decode16, min, max, align 1, length.
	 * Extended interrupt: 89, length 6, consumer|edge = 03, count 1, GSI.
	 * Memory32Fixed: 86, length 9, read-write, base, length.
	 * End tag 79 00. 8 + 9 + 12 + 2 = 31 = 0x1f bytes: BufferSize 0a 1f, and
	 * the Buffer's PkgLength 1 + 2 + 31 = 34 = 0x22.
	 */
	aml_crs_begin(&a);
	aml_crs_io(&a, 0x3f8, 8);
	aml_crs_irq(&a, 4, false, false);
	aml_crs_mem32(&a, 0xd0001000, 4);
	aml_crs_end(&a);
	EXPECT(&a, 0x08, '_', 'C', 'R', 'S', 0x11, 0x22, 0x0a, 0x1f,
	       0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
	       0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00,
	       0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x04, 0x00, 0x00, 0x00,
	       0x79, 0x00);
}

Test(aml, irq_level_active_low)
{
	struct aml a = aml_new();

	/* Level (bit 1 clear), active low (bit 2), consumer: flags 05. */
	aml_crs_begin(&a);
	aml_crs_irq(&a, 0x12345678, true, true);
	aml_crs_end(&a);
	EXPECT(&a, 0x08, '_', 'C', 'R', 'S', 0x11, 0x0e, 0x0a, 0x0b,
	       0x89, 0x06, 0x00, 0x05, 0x01, 0x78, 0x56, 0x34, 0x12, 0x79, 0x00);
}

Test(aml, operation_region_and_field)
{
	struct aml a = aml_new();

	/*
	 * ExtOpPrefix OpRegionOp, name, SystemMemory (0), offset, length.
	 * ExtOpPrefix FieldOp, PkgLength 1 + 4 + 1 + 5 + 6 = 17 (0x11), flags:
	 * DWordAcc (3) | NoLock | WriteAsZeros (2 << 5) = 0x43, then each unit as a
	 * NameSeg and its bit width (64 bits need two bytes: 0x40 | 0, 0x04).
	 */
	aml_operation_region(&a, "EREG", AML_SYSTEM_MEMORY, 0xd0001000, 4);
	aml_field(&a, "EREG", AML_DWORD_ACC);
	aml_field_unit(&a, "EVTS", 32);
	aml_field_unit(&a, "WIDE", 64);
	aml_end(&a);
	EXPECT(&a, 0x5b, 0x80, 'E', 'R', 'E', 'G', 0x00, 0x0c, 0x00, 0x10, 0x00, 0xd0, 0x0a, 0x04,
	       0x5b, 0x81, 0x11, 'E', 'R', 'E', 'G', 0x43, 'E', 'V', 'T', 'S', 0x20,
	       'W', 'I', 'D', 'E', 0x40, 0x04);
}

Test(aml, store_if_and_notify)
{
	struct aml a = aml_new();

	/*
	 * Store(EVTS, Local0): 70 EVTS 60.
	 * If (And(Local0, 1, NullName)) { Notify(\_SB.VGEN, 0x80) }:
	 * a0, PkgLength 1 + 4 + 1 + 10 + 2 = 18 (0x12), 7b 60 01 00, 86 path 0a 80.
	 */
	aml_store(&a);
	aml_name_ref(&a, "EVTS");
	aml_local(&a, 0);
	aml_if(&a);
	aml_and(&a);
	aml_local(&a, 0);
	aml_int(&a, 1);
	aml_no_target(&a);
	aml_notify(&a, "\\_SB.VGEN", 0x80);
	aml_end(&a);
	aml_arg(&a, 6);
	EXPECT(&a, 0x70, 'E', 'V', 'T', 'S', 0x60,
	       0xa0, 0x12, 0x7b, 0x60, 0x01, 0x00,
	       0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x0a, 0x80,
	       0x6e);
}

/* ---- PkgLength: 1 to 4 bytes, counting themselves ---- */

/*
 * Device(DEV0) { Name(STR0, "xx...x") } with k characters: a body (after the
 * PkgLength) of 4 + 1 + 4 + 1 + k + 1 = 11 + k bytes.
 */
static void pkg_device(struct aml *a, size_t k)
{
	char *s = malloc(k + 1);

	cr_assert(s);
	memset(s, 'x', k);
	s[k] = 0;
	aml_device(a, "DEV0");
	aml_name_string(a, "STR0", s);
	aml_end(a);
	free(s);
}

/* The device's PkgLength is pkg[0..n), and the body after it is intact. */
static void pkg_check(size_t body, const uint8_t *pkg, size_t n)
{
	size_t cap = body + 16;
	uint8_t *buf = malloc(cap);
	struct aml a;

	cr_assert(buf);
	aml_init(&a, buf, cap);
	pkg_device(&a, body - 11);
	cr_assert_eq(aml_finish(&a), (int)(2 + n + body), "body %zu", body);
	cr_assert_eq(buf[0], 0x5b);
	cr_assert_eq(buf[1], 0x82);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(buf[2 + i], pkg[i], "body %zu: PkgLength byte %zu is %#x, want %#x",
			     body, i, buf[2 + i], pkg[i]);
	cr_assert(!memcmp(buf + 2 + n, "DEV0\x08STR0\x0dx", 11), "body %zu moved wrongly", body);
	cr_assert_eq(buf[2 + n + body - 1], 0, "body %zu: the string's NUL is last", body);
	free(buf);
}

Test(aml, pkg_length_one_byte_up_to_63)
{
	/* 62 + 1 = 63 = 0x3f: one byte. */
	pkg_check(62, (const uint8_t[]){ 0x3f }, 1);
}

Test(aml, pkg_length_two_bytes_from_64)
{
	/* 63 + 1 = 64 does not fit 6 bits; 63 + 2 = 65 = 0x041: 0x40 | 0x1, 0x04. */
	pkg_check(63, (const uint8_t[]){ 0x41, 0x04 }, 2);
}

Test(aml, pkg_length_two_bytes_up_to_4095)
{
	/* 4093 + 2 = 4095 = 0xfff: 0x40 | 0xf, 0xff. */
	pkg_check(4093, (const uint8_t[]){ 0x4f, 0xff }, 2);
}

Test(aml, pkg_length_three_bytes_from_4096)
{
	/* 4094 + 2 = 4096 does not fit 12 bits; 4094 + 3 = 4097 = 0x01001: 0x81, 0x00, 0x01. */
	pkg_check(4094, (const uint8_t[]){ 0x81, 0x00, 0x01 }, 3);
}

Test(aml, pkg_length_four_bytes_past_20_bits)
{
	/* 0xffffc + 3 = 0xfffff fits 20 bits; 0xffffe + 3 does not: + 4 = 0x100002. */
	pkg_check(0xffffc, (const uint8_t[]){ 0x8f, 0xff, 0xff }, 3);
	pkg_check(0xffffe, (const uint8_t[]){ 0xc2, 0x00, 0x00, 0x01 }, 4);
}

Test(aml, field_width_is_not_a_package_length)
{
	struct aml a = aml_new();

	/*
	 * A unit's width is a plain number in PkgLength's encoding, not counting its
	 * own bytes: 63 bits in one byte; 64 needs two (0x40, 0x04); 4096 three
	 * (0x80, 0x00, 0x01). PkgLength 1 + 4 + 1 + 5 + 6 + 7 = 24.
	 */
	aml_field(&a, "R", AML_BYTE_ACC);
	aml_field_unit(&a, "A", 63);
	aml_field_unit(&a, "B", 64);
	aml_field_unit(&a, "C", 4096);
	aml_end(&a);
	EXPECT(&a, 0x5b, 0x81, 0x18, 'R', '_', '_', '_', 0x41,
	       'A', '_', '_', '_', 0x3f, 'B', '_', '_', '_', 0x40, 0x04,
	       'C', '_', '_', '_', 0x80, 0x00, 0x01);
}

/* ---- Errors: sticky, and nothing written after them ---- */

static void expect_error(struct aml *a, int err)
{
	size_t len = a->len;

	cr_assert_eq(aml_finish(a), err, "aml_finish: %d, want %d", aml_finish(a), err);
	aml_name_int(a, "OK", 1);
	aml_device(a, "OK");
	aml_end(a);
	cr_assert_eq(a->len, len, "a call after the error wrote bytes");
	cr_assert_eq(aml_finish(a), err, "the error did not stick");
}

Test(aml, bad_names)
{
	static const char *const bad[] = {
		"", "_hid", "TOOLONG", "1ABC", "A.", ".A", "A..B", "\\\\A", "A B", "^", "^\\A",
		"\\_SB.", "\\_SB.12", NULL,
	};

	for (unsigned i = 0; bad[i]; i++) {
		struct aml a = aml_new();

		aml_name_int(&a, bad[i], 1);
		cr_assert_eq(aml_finish(&a), -EINVAL, "name '%s' was taken", bad[i]);
	}
	{
		struct aml a = aml_new();

		aml_name_int(&a, NULL, 1);
		expect_error(&a, -EINVAL);
	}
}

Test(aml, bad_eisaid_and_values)
{
	static const char *const bad[] = { "pnp0501", "PNP050", "PNP05011", "PNP05G1", "P1P0501", NULL };

	for (unsigned i = 0; bad[i]; i++) {
		struct aml a = aml_new();

		aml_name_eisaid(&a, "_HID", bad[i]);
		cr_assert_eq(aml_finish(&a), -EINVAL, "EISAID '%s' was taken", bad[i]);
		cr_assert_eq(a.len, 0);
	}
	{
		struct aml a = aml_new();

		aml_local(&a, 8);
		expect_error(&a, -EINVAL);
	}
	{
		struct aml a = aml_new();

		aml_method(&a, "M", 8, false);
		expect_error(&a, -EINVAL);
	}
}

Test(aml, full_buffer_is_enospc_and_sticks)
{
	uint8_t small[12];
	struct aml a;

	aml_init(&a, small, sizeof(small));
	aml_name_int(&a, "_UID", 1);         /* 6 bytes: fits */
	aml_name_string(&a, "_HID", "ACPI0013"); /* 15: does not */
	expect_error(&a, -ENOSPC);
}

Test(aml, pkg_length_that_does_not_fit_is_enospc)
{
	/* Exactly room for a 1-byte PkgLength: the body needs 2 (63 bytes of it), so no room. */
	uint8_t buf[2 + 63];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	pkg_device(&a, 63 - 11);
	cr_assert_eq(aml_finish(&a), -ENOSPC);
}

Test(aml, unbalanced_scopes)
{
	struct aml a = aml_new();

	aml_end(&a);
	expect_error(&a, -EINVAL);
	a = aml_new();
	aml_device(&a, "OPEN");
	cr_assert_eq(aml_finish(&a), -EINVAL, "a scope left open");
}

Test(aml, too_deep)
{
	struct aml a = aml_new();

	for (int i = 0; i < AML_MAX_DEPTH; i++)
		aml_scope(&a, "\\");
	cr_assert_eq(a.err, 0);
	aml_scope(&a, "\\");
	expect_error(&a, -EINVAL);
}

Test(aml, resource_template_misuse)
{
	struct aml a = aml_new();

	aml_crs_io(&a, 0x60, 1); /* outside a template */
	expect_error(&a, -EINVAL);
	a = aml_new();
	aml_crs_begin(&a);
	aml_name_int(&a, "X", 1); /* a term inside one */
	expect_error(&a, -EINVAL);
	a = aml_new();
	aml_crs_begin(&a);
	aml_end(&a); /* closed the wrong way */
	expect_error(&a, -EINVAL);
	a = aml_new();
	aml_crs_begin(&a);
	cr_assert_eq(aml_finish(&a), -EINVAL, "a template left open");
}

Test(aml, package_of_more_than_255)
{
	static const uint64_t v[256];
	struct aml a = aml_new();

	aml_name_package(&a, "P", v, 256);
	cr_assert_eq(aml_finish(&a), -EINVAL);
}
