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

#endif
