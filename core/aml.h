/*
 * A small writer of ACPI Machine Language (ACPI 6.5, chapter 20): the few
 * terms vm-fork's DSDT needs (devices, names, resource templates, short
 * methods), appended to a caller's buffer. Scopes that carry a PkgLength
 * (Scope, Device, Method, If, Field) are opened by their call and closed by
 * aml_end(); the PkgLength is written then, in as many bytes (1 to 4) as it
 * needs, so the body moves up when it needs more than one.
 * Errors are sticky: the first one (-ENOSPC: the buffer is full; -EINVAL:
 * a bad name or value, a term where it cannot go (outside or inside a
 * resource template), scopes nested deeper than AML_MAX_DEPTH, or an
 * unbalanced aml_end(); -E2BIG: a scope longer than a PkgLength can say)
 * is kept in err, and every later call does nothing, so a caller checks once
 * at the end.
 */
#ifndef CORE_AML_H
#define CORE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err;
	unsigned depth;
	size_t open[AML_MAX_DEPTH]; /* where each open scope's PkgLength starts */
	bool in_crs;               /* between aml_crs_begin() and aml_crs_end() */
	size_t crs_start;
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* The bytes written, or a's error (-EINVAL too while a scope is still open). */
int aml_finish(struct aml *a);

/* Scope(path) {, Device(name) {, Method(name, nargs) {; each ends at aml_end(). */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *name);
void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized);
void aml_end(struct aml *a);

/*
 * Name(name, value). Names are 1-4 characters of [A-Z0-9_] (not starting
 * with a digit; short ones are padded with '_'), or paths: a leading '\'
 * or '^'s, then such names joined by '.' ("\\_SB.VGEN").
 */
void aml_name_int(struct aml *a, const char *name, uint64_t value);
void aml_name_string(struct aml *a, const char *name, const char *value);
/* Name(name, EISAID("PNP0501")): three capitals and four hex digits. */
void aml_name_eisaid(struct aml *a, const char *name, const char *id);
/* Name(name, Package() { values... }), at most 255 of them. */
void aml_name_package(struct aml *a, const char *name, const uint64_t *values, unsigned n);

/* Name(_CRS, ResourceTemplate() { ... }): the resources between begin and end. */
void aml_crs_begin(struct aml *a);
/* IO(Decode16, base, base, 1, len) */
void aml_crs_io(struct aml *a, uint16_t base, uint8_t len);
/* Memory32Fixed(ReadWrite, base, len) */
void aml_crs_mem32(struct aml *a, uint32_t base, uint32_t len);
/* Interrupt(ResourceConsumer, level or edge, active low or high, Exclusive) { gsi } */
void aml_crs_irq(struct aml *a, uint32_t gsi, bool level, bool active_low);
void aml_crs_end(struct aml *a);

/* Inside a method: Return(Package() { values... }). */
void aml_return_package(struct aml *a, const uint64_t *values, unsigned n);
/* Notify(target, value). */
void aml_notify(struct aml *a, const char *target, uint64_t value);

/* OperationRegion(name, space, offset, len). */
enum aml_region_space { AML_SYSTEM_MEMORY = 0, AML_SYSTEM_IO = 1 };
void aml_operation_region(struct aml *a, const char *name, enum aml_region_space space,
			  uint64_t offset, uint64_t len);
/*
 * Field(region, access, NoLock, WriteAsZeros) { units }: aml_field_unit()
 * adds "name, bits" in order; aml_end() closes it.
 */
enum aml_field_access { AML_ANY_ACC = 0, AML_BYTE_ACC = 1, AML_WORD_ACC = 2, AML_DWORD_ACC = 3,
			AML_QWORD_ACC = 4 };
void aml_field(struct aml *a, const char *region, enum aml_field_access access);
void aml_field_unit(struct aml *a, const char *name, unsigned bits);

/*
 * Expressions, written in prefix order as AML has them: each call writes one
 * term, and an operator's operands are the terms written right after it, in
 * the order ASL lists them. Store(src, dst): aml_store() then src and dst;
 * And(x, y, target): aml_and() then x, y and a target (aml_no_target() for
 * none); If (predicate) {: aml_if() then the predicate, then the body, then
 * aml_end().
 */
void aml_store(struct aml *a);
void aml_and(struct aml *a);
void aml_if(struct aml *a);
void aml_int(struct aml *a, uint64_t value);    /* the shortest encoding of value */
void aml_local(struct aml *a, unsigned n);       /* Local0..Local7 */
void aml_arg(struct aml *a, unsigned n);         /* Arg0..Arg6 */
void aml_name_ref(struct aml *a, const char *path); /* a named object, as an operand */
void aml_no_target(struct aml *a);               /* an omitted target */

#endif
