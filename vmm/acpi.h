/*
 * The ACPI tables a VM boots with (docs/acpi.md): a hardware-reduced set
 * (RSDP, XSDT, FADT, MADT, DSDT) in [LAYOUT_ACPI, LAYOUT_ACPI_END), where
 * Linux also finds the RSDP by scanning. The DSDT is AML written at boot from
 * what this VM has: each device of the table describes itself (describe()).
 */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include "core/layout.h"
#include "core/memory.h"

/* Where the RSDP goes: 16-byte aligned in the BIOS area Linux scans. */
#define ACPI_RSDP_GPA LAYOUT_ACPI

/*
 * Write the tables for ncpus vCPUs and the devices devs (one per entry of
 * device_table, NULL for none), then the RSDP's address into the zero page,
 * which boot_write_params() must have written before. 0, or -EINVAL (a CPU
 * count the MADT cannot hold), -ENOSPC (the DSDT does not fit), a device's
 * describe() error, or -EFAULT.
 */
int acpi_write_tables(const struct guest_mem *mem, unsigned ncpus, void *const *devs);

/* Room for the tables a firmware's loader places. */
#define ACPI_BLOB_MAX (64 * 1024)

struct acpi_range {
	uint32_t start, len;
};

/*
 * The same tables for a firmware to place where it likes (QEMU's
 * etc/table-loader): XSDT, FADT, MADT and DSDT as if they sat at address 0,
 * and the RSDP on its own. The fields that hold a table's address hold its
 * offset in tables, for the firmware to add where tables went; checksums to
 * redo after that are in sums and at the RSDP's two checksum offsets. The
 * CMOS RTC is there: the firmware machine has it.
 */
struct acpi_blob {
	uint8_t *tables;
	size_t len;
	uint8_t rsdp[36];
	uint32_t rsdp_xsdt;             /* offset in rsdp of the XSDT's 64-bit address */
	uint32_t rsdp_sum, rsdp_sum_len, rsdp_ext_sum;
	uint32_t ptr64[4];              /* offsets in tables of 64-bit addresses */
	unsigned nptr64;
	uint32_t ptr32;                 /* and of the one 32-bit address (FADT's DSDT) */
	struct acpi_range sums[2];      /* tables whose checksums the addresses change */
};

/* 0, or what acpi_write_tables() fails with; acpi_blob_free() afterwards. */
int acpi_build_blob(unsigned ncpus, void *const *devs, struct acpi_blob *out);
void acpi_blob_free(struct acpi_blob *blob);

#endif
