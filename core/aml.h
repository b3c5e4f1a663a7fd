/*
 * A small writer of ACPI Machine Language: the few terms vm-fork's DSDT
 * needs (devices, names, resource templates, short methods), appended to
 * a caller's buffer. Scopes that carry a PkgLength (Scope, Device, Method,
 * If, Package) are opened by their call and closed by aml_end().
 * Errors are sticky: the first one (-ENOSPC: the buffer is full; -EINVAL:
 * a bad name or an unbalanced aml_end()) is kept in err, and every later
 * call does nothing, so a caller checks once at the end.
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
/* The bytes written, or a's error. */
int aml_finish(struct aml *a);

/* Scope(path) {, Device(name) {, Method(name, nargs) {; each ends at aml_end(). */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *name);
void aml_method(struct aml *a, const char *name, unsigned nargs, bool serialized);
void aml_end(struct aml *a);

/* Name(name, value). Names are 1-4 characters of [A-Z0-9_], or dotted paths with a leading '\'. */
void aml_name_int(struct aml *a, const char *name, uint64_t value);
void aml_name_string(struct aml *a, const char *name, const char *value);
/* Name(name, EISAID("PNP0501")). */
void aml_name_eisaid(struct aml *a, const char *name, const char *id);
/* Name(name, Package() { values... }). */
void aml_name_package(struct aml *a, const char *name, const uint64_t *values, unsigned n);

/* Name(_CRS, ResourceTemplate() { ... }): the resources between begin and end. */
void aml_crs_begin(struct aml *a);
void aml_crs_io(struct aml *a, uint16_t base, uint8_t len);
void aml_crs_mem32(struct aml *a, uint32_t base, uint32_t len);
/* Interrupt(ResourceConsumer, level or edge, active low or high, Exclusive) { gsi } */
void aml_crs_irq(struct aml *a, uint32_t gsi, bool level, bool active_low);
void aml_crs_end(struct aml *a);

/* Inside a method: Return(Package() { values... }). */
void aml_return_package(struct aml *a, const uint64_t *values, unsigned n);
/* Notify(target, value). */
void aml_notify(struct aml *a, const char *target, uint64_t value);

#endif
