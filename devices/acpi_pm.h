/*
 * The hardware-reduced ACPI power registers the FADT names (core/layout.h,
 * ACPI_PM_PORT): sleep control, sleep status and reset, one byte each.
 * Entering S5 powers the machine off, the reset value resets it; nothing else
 * sleeps (the DSDT offers S5 alone).
 */
#ifndef DEVICES_ACPI_PM_H
#define DEVICES_ACPI_PM_H

#include <stdint.h>

#include "core/device.h"

/* SLP_TYP for S5, the DSDT's \_S5 package (vmm/acpi.c) says so to the guest. */
#define ACPI_PM_S5_TYPE 5

/* Sleep control register (ACPI 6.5, 4.8.3.7). */
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK  0x1c
#define ACPI_SLP_EN        0x20
/* Sleep status register (4.8.3.8): WAK_STS, write 1 to clear. */
#define ACPI_WAK_STS       0x80

struct acpi_pm;

/* What a snapshot carries. */
struct acpi_pm_state {
	uint8_t sleep_sts;
};

/* Writes the device ignored (a sleep it does not offer, a wrong reset value, ...). */
uint64_t acpi_pm_ignored(const struct acpi_pm *pm);

extern const struct device_type acpi_pm_device;

#endif
