/*
 * The AML writer (core/aml.h). Encodings follow ACPI 6.5 chapter 20 (the
 * AML grammar) and 6.4 (resource descriptors).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "core/aml.h"

#define AML_ZERO        0x00
#define AML_ONE         0x01
#define AML_NAME        0x08
#define AML_BYTE        0x0a
#define AML_WORD        0x0b
#define AML_DWORD       0x0c
#define AML_STRING      0x0d
#define AML_QWORD       0x0e
#define AML_SCOPE       0x10
#define AML_BUFFER      0x11
#define AML_PACKAGE     0x12
#define AML_METHOD      0x14
#define AML_DUAL_NAME   0x2e
#define AML_MULTI_NAME  0x2f
#define AML_EXT         0x5b
#define AML_ROOT        0x5c
#define AML_PARENT      0x5e
#define AML_LOCAL0      0x60
#define AML_ARG0        0x68
#define AML_STORE       0x70
#define AML_AND         0x7b
#define AML_NOTIFY      0x86
#define AML_IF          0xa0
#define AML_RETURN      0xa4
#define AML_EXT_REGION  0x80
#define AML_EXT_FIELD   0x81
#define AML_EXT_DEVICE  0x82

#define NAME_SEG        4
#define MAX_SEGS        255   /* MultiNamePrefix's SegCount is a byte */
#define FIELD_WRITE_AS_ZEROS (2 << 5)

/* Resource descriptors: small ones are a tag byte, large ones a tag and a 16-bit length. */
#define RES_IO          0x47  /* small item 0x08, 7 bytes */
#define RES_END         0x79  /* small item 0x0f, 1 byte */
#define RES_MEM32_FIXED 0x86  /* large item 0x06, 9 bytes */
#define RES_EXT_IRQ     0x89  /* large item 0x09 */
#define IRQ_CONSUMER    0x01
#define IRQ_EDGE        0x02
#define IRQ_ACTIVE_LOW  0x04

/* Largest PkgLength that n bytes of it can say (the count includes those bytes). */
static const size_t pkg_max[5] = { 0, 0x3f, 0xfff, 0xfffff, 0xfffffff };

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

/* Whether an AML term may be written now: no error yet, and not inside a resource template. */
static bool term_ok(struct aml *a)
{
	if (!a->err && a->in_crs)
		fail(a, -EINVAL);
	return !a->err;
}

/* Insert n bytes at pos, moving what follows up: for lengths known only at the end. */
static void insert(struct aml *a, size_t pos, const void *bytes, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, bytes, n);
	a->len += n;
}

static void put(struct aml *a, const void *bytes, size_t n)
{
	insert(a, a->len, bytes, n);
}

static void put_byte(struct aml *a, uint8_t b)
{
	put(a, &b, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(a, b, n);
}

/* ---- Names ---- */

static bool lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
	return lead_char(c) || (c >= '0' && c <= '9');
}

/* One NameSeg from s into seg, padded with '_'; the characters used, or 0 when bad. */
static size_t parse_seg(const char *s, uint8_t seg[NAME_SEG])
{
	size_t n = 0;

	if (!lead_char(s[0]))
		return 0;
	while (n < NAME_SEG && name_char(s[n])) {
		seg[n] = (uint8_t)s[n];
		n++;
	}
	if (name_char(s[n]))
		return 0; /* longer than 4 */
	memset(seg + n, '_', NAME_SEG - n);
	return n;
}

/* The prefix ('\' or '^'s) and the segments of path; the segment count, or -1 when bad. */
static int parse_path(const char *path, uint8_t *prefix, size_t *nprefix,
		      uint8_t segs[][NAME_SEG])
{
	const char *p = path;
	int nsegs = 0;

	*nprefix = 0;
	if (*p == '\\')
		prefix[(*nprefix)++] = *p++;
	else
		while (*p == '^' && *nprefix < MAX_SEGS)
			prefix[(*nprefix)++] = *p++;
	if (!*p)
		return *nprefix == 1 && prefix[0] == '\\' ? 0 : -1; /* "\" alone is the root */
	for (;;) {
		size_t n = nsegs < MAX_SEGS ? parse_seg(p, segs[nsegs]) : 0;

		if (!n)
			return -1;
		nsegs++;
		p += n;
		if (!*p)
			return nsegs;
		if (*p++ != '.')
			return -1;
	}
}

/* A NameString: prefix, then NullName, one NameSeg, DualNamePath or MultiNamePath. */
static void put_name(struct aml *a, const char *path)
{
	uint8_t prefix[MAX_SEGS], segs[MAX_SEGS][NAME_SEG];
	size_t nprefix;
	int n = path ? parse_path(path, prefix, &nprefix, segs) : -1;

	if (n < 0) {
		fail(a, -EINVAL);
		return;
	}
	put(a, prefix, nprefix);
	if (n == 0)
		put_byte(a, AML_ZERO);
	else if (n == 2)
		put_byte(a, AML_DUAL_NAME);
	else if (n > 2) {
		put_byte(a, AML_MULTI_NAME);
		put_byte(a, (uint8_t)n);
	}
	put(a, segs, (size_t)n * NAME_SEG);
}

/* ---- Scopes with a PkgLength ---- */

static void open_scope(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		fail(a, -EINVAL);
		return;
	}
	a->open[a->depth++] = a->len;
}

/* v in exactly n bytes, PkgLength style: bits 7-6 of the first say how many follow. */
static void pkg_bytes(size_t v, size_t n, uint8_t out[4])
{
	if (n == 1) {
		out[0] = (uint8_t)v; /* 6 bits */
		return;
	}
	out[0] = (uint8_t)((n - 1) << 6 | (v & 0x0f));
	for (size_t i = 1; i < n; i++)
		out[i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
}

/* A scope's PkgLength, which counts its own bytes: their number, or 0 when too long. */
static size_t encode_pkg_length(size_t body, uint8_t out[4])
{
	size_t n = 1;

	while (n < 4 && body + n > pkg_max[n])
		n++;
	if (body + n > pkg_max[n])
		return 0;
	pkg_bytes(body + n, n, out);
	return n;
}

static void close_scope(struct aml *a)
{
	uint8_t pkg[4];
	size_t pos, n;

	if (a->err)
		return;
	if (a->depth == 0) {
		fail(a, -EINVAL);
		return;
	}
	pos = a->open[--a->depth];
	n = encode_pkg_length(a->len - pos, pkg);
	if (!n)
		fail(a, -E2BIG);
	else
		insert(a, pos, pkg, n);
}

void aml_end(struct aml *a)
{
	if (term_ok(a))
		close_scope(a);
}

void aml_scope(struct aml *a, const char *path)
{
	if (!term_ok(a))
		return;
	put_byte(a, AML_SCOPE);
	open_scope(a);
	put_name(a, path);
}

void aml_device(struct aml *a, const char *name)
{
	if (!term_ok(a))
		return;
	put_byte(a, AML_EXT);
	put_byte(a, AML_EXT_DEVICE);
	open_scope(a);
	put_name(a, name);
}

/* MethodFlags: ArgCount in bits 0-2, SerializeFlag in bit 3, SyncLevel 0. */
void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (!term_ok(a))
		return;
	if (nargs > 7) {
		fail(a, -EINVAL);
		return;
	}
	put_byte(a, AML_METHOD);
	open_scope(a);
	put_name(a, name);
	put_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_if(struct aml *a)
{
	if (!term_ok(a))
		return;
	put_byte(a, AML_IF);
	open_scope(a);
}

/* ---- Data ---- */

/* The shortest integer term for v; its length. */
static size_t encode_int(uint64_t v, uint8_t out[9])
{
	static const uint8_t prefix[9] = { [1] = AML_BYTE, [2] = AML_WORD, [4] = AML_DWORD,
					   [8] = AML_QWORD };
	size_t n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;

	if (v <= 1) {
		out[0] = v ? AML_ONE : AML_ZERO;
		return 1;
	}
	out[0] = prefix[n];
	for (size_t i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return n + 1;
}

void aml_int(struct aml *a, uint64_t v)
{
	uint8_t b[9];

	if (term_ok(a))
		put(a, b, encode_int(v, b));
}

/* Package(n) { values }: its PkgLength is known before it is written, but close_scope() says it. */
static void put_package(struct aml *a, const uint64_t *values, unsigned n)
{
	if (n > 0xff || (n && !values)) {
		fail(a, -EINVAL);
		return;
	}
	put_byte(a, AML_PACKAGE);
	open_scope(a);
	put_byte(a, (uint8_t)n);
	for (unsigned i = 0; i < n; i++)
		aml_int(a, values[i]);
	close_scope(a);
}

static void put_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			fail(a, -EINVAL); /* AsciiCharList: 0x01-0x7f */
			return;
		}
	put_byte(a, AML_STRING);
	put(a, s, strlen(s) + 1);
}

/* NameOp and the name; false when nothing more may be written. */
static bool name_op(struct aml *a, const char *name)
{
	if (!term_ok(a))
		return false;
	put_byte(a, AML_NAME);
	put_name(a, name);
	return !a->err;
}

void aml_name_int(struct aml *a, const char *name, uint64_t value)
{
	if (name_op(a, name))
		aml_int(a, value);
}

void aml_name_string(struct aml *a, const char *name, const char *value)
{
	if (!value)
		fail(a, -EINVAL);
	if (name_op(a, name))
		put_string(a, value);
}

void aml_name_package(struct aml *a, const char *name, const uint64_t *values, unsigned n)
{
	if (name_op(a, name))
		put_package(a, values, n);
}

static bool hex_digit(char c, unsigned *v)
{
	if (c >= '0' && c <= '9')
		*v = (unsigned)(c - '0');
	else if (c >= 'A' && c <= 'F')
		*v = (unsigned)(c - 'A' + 10);
	else
		return false;
	return true;
}

/*
 * EISAID packs three letters (5 bits each, 'A' = 1) and a 16-bit product
 * number into 4 bytes: letters in the first two, big-endian, then the
 * number, big-endian. Always a DWordConst, as ASL compilers write it.
 */
static bool eisaid(const char *id, uint32_t *out)
{
	unsigned c[3], d[4];

	if (!id || strlen(id) != 7)
		return false;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return false;
		c[i] = (unsigned)(id[i] - 'A' + 1);
	}
	for (int i = 0; i < 4; i++)
		if (!hex_digit(id[3 + i], &d[i]))
			return false;
	*out = (uint32_t)((c[0] << 2 | c[1] >> 3) | ((c[1] & 7) << 5 | c[2]) << 8 |
			  (d[0] << 4 | d[1]) << 16 | (uint32_t)(d[2] << 4 | d[3]) << 24);
	return true;
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	uint32_t v;

	if (!eisaid(id, &v))
		fail(a, -EINVAL);
	if (!name_op(a, name))
		return;
	put_byte(a, AML_DWORD);
	put_le(a, v, 4);
}

/* ---- Resource templates: Name(_CRS, Buffer(size) { descriptors, EndTag }) ---- */

static bool crs_ok(struct aml *a)
{
	if (!a->err && !a->in_crs)
		fail(a, -EINVAL);
	return !a->err;
}

void aml_crs_begin(struct aml *a)
{
	if (!name_op(a, "_CRS"))
		return;
	put_byte(a, AML_BUFFER);
	open_scope(a);
	/* The BufferSize goes here once the descriptors' length is known (aml_crs_end). */
	a->crs_start = a->len;
	a->in_crs = !a->err;
}

/* IO: decodes 16 bits, min = max = base, alignment 1. */
void aml_crs_io(struct aml *a, uint16_t base, uint8_t len)
{
	if (!crs_ok(a))
		return;
	put_byte(a, RES_IO);
	put_byte(a, 0x01);
	put_le(a, base, 2);
	put_le(a, base, 2);
	put_byte(a, 1);
	put_byte(a, len);
}

void aml_crs_mem32(struct aml *a, uint32_t base, uint32_t len)
{
	if (!crs_ok(a))
		return;
	put_byte(a, RES_MEM32_FIXED);
	put_le(a, 9, 2);
	put_byte(a, 0x01); /* read-write */
	put_le(a, base, 4);
	put_le(a, len, 4);
}

void aml_crs_irq(struct aml *a, uint32_t gsi, bool level, bool active_low)
{
	if (!crs_ok(a))
		return;
	put_byte(a, RES_EXT_IRQ);
	put_le(a, 6, 2); /* flags, count, one 32-bit interrupt */
	put_byte(a, (uint8_t)(IRQ_CONSUMER | (level ? 0 : IRQ_EDGE) |
			      (active_low ? IRQ_ACTIVE_LOW : 0)));
	put_byte(a, 1);
	put_le(a, gsi, 4);
}

void aml_crs_end(struct aml *a)
{
	uint8_t size[9];

	if (!crs_ok(a))
		return;
	/* End tag; a zero checksum tells the reader not to check it. */
	put_byte(a, RES_END);
	put_byte(a, 0);
	a->in_crs = false;
	/* BufferSize, an integer term, goes in front of the descriptors it counts. */
	insert(a, a->crs_start, size, encode_int(a->len - a->crs_start, size));
	close_scope(a);
}

/* ---- Statements and operators ---- */

void aml_return_package(struct aml *a, const uint64_t *values, unsigned n)
{
	if (!term_ok(a))
		return;
	put_byte(a, AML_RETURN);
	put_package(a, values, n);
}

void aml_notify(struct aml *a, const char *target, uint64_t value)
{
	if (!term_ok(a))
		return;
	put_byte(a, AML_NOTIFY);
	put_name(a, target);
	aml_int(a, value);
}

void aml_operation_region(struct aml *a, const char *name, enum aml_region_space space,
			  uint64_t offset, uint64_t len)
{
	if (!term_ok(a))
		return;
	if (space != AML_SYSTEM_MEMORY && space != AML_SYSTEM_IO) {
		fail(a, -EINVAL);
		return;
	}
	put_byte(a, AML_EXT);
	put_byte(a, AML_EXT_REGION);
	put_name(a, name);
	put_byte(a, (uint8_t)space);
	aml_int(a, offset);
	aml_int(a, len);
}

/* FieldFlags: AccessType in bits 0-3, LockRule (NoLock: 0) in bit 4, UpdateRule in 5-6. */
void aml_field(struct aml *a, const char *region, enum aml_field_access access)
{
	if (!term_ok(a))
		return;
	if (access > AML_QWORD_ACC) {
		fail(a, -EINVAL);
		return;
	}
	put_byte(a, AML_EXT);
	put_byte(a, AML_EXT_FIELD);
	open_scope(a);
	put_name(a, region);
	put_byte(a, (uint8_t)(access | FIELD_WRITE_AS_ZEROS));
}

/* NamedField: a NameSeg, then its width in bits in PkgLength's encoding (not counting itself). */
void aml_field_unit(struct aml *a, const char *name, unsigned bits)
{
	uint8_t seg[NAME_SEG], width[4];
	size_t used = name ? parse_seg(name, seg) : 0, n = 1;

	if (!term_ok(a))
		return;
	if (!used || name[used] || !bits || bits > pkg_max[4]) {
		fail(a, -EINVAL);
		return;
	}
	while (bits > pkg_max[n])
		n++;
	pkg_bytes(bits, n, width);
	put(a, seg, NAME_SEG);
	put(a, width, n);
}

/* One opcode each: the caller writes the operands after it (core/aml.h). */
void aml_store(struct aml *a)
{
	if (term_ok(a))
		put_byte(a, AML_STORE);
}

void aml_and(struct aml *a)
{
	if (term_ok(a))
		put_byte(a, AML_AND);
}

void aml_local(struct aml *a, unsigned n)
{
	if (n > 7)
		fail(a, -EINVAL);
	if (term_ok(a))
		put_byte(a, (uint8_t)(AML_LOCAL0 + n));
}

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6)
		fail(a, -EINVAL);
	if (term_ok(a))
		put_byte(a, (uint8_t)(AML_ARG0 + n));
}

void aml_name_ref(struct aml *a, const char *path)
{
	if (term_ok(a))
		put_name(a, path);
}

/* A Target that is omitted is a NullName. */
void aml_no_target(struct aml *a)
{
	if (term_ok(a))
		put_byte(a, AML_ZERO);
}

int aml_finish(struct aml *a)
{
	if (!a->err && (a->depth || a->in_crs))
		return -EINVAL;
	if (!a->err && a->len > INT_MAX)
		return -E2BIG;
	return a->err ? a->err : (int)a->len;
}
