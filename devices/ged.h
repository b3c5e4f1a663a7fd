/*
 * The ACPI Generic Event Device (ACPI 6.5, 5.6.9): how the VMM tells the
 * guest that something happened (a clone's new VMGenID). One 32-bit event
 * register at LAYOUT_GED_MMIO holds the pending ACPI_EVENT_* bits (a read
 * returns them and clears them), and an edge on GSI_GED makes the guest run
 * the device's _EVT method, which reads the register and sends each event's
 * Notify().
 */
#ifndef DEVICES_GED_H
#define DEVICES_GED_H

#include <stdint.h>

#include "core/device.h"

struct ged;

/* What a snapshot carries: the events the guest has not read yet. */
struct ged_state {
	uint32_t pending;
};

/* Add events to the register and pulse GSI_GED. Any thread. */
void ged_raise(struct ged *ged, uint32_t events);

extern const struct device_type ged_device;

#endif
