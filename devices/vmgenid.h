/*
 * VMGenID: a 128-bit generation ID in guest RAM (LAYOUT_VMGENID) that the
 * guest finds through the DSDT (\_SB.VGEN, its ADDR package). Every new
 * identity, a clone or a restored snapshot, gets a fresh random one before
 * its vCPUs run, and the GED tells the guest (Notify 0x80): Linux's vmgenid
 * driver then reseeds its CRNG, so no two clones share random numbers.
 */
#ifndef DEVICES_VMGENID_H
#define DEVICES_VMGENID_H

#include <stdint.h>

#include "core/device.h"

struct vmgenid_state {
	uint8_t guid[16];   /* what the guest's page holds */
	uint64_t changes;   /* identities taken since boot */
	uint64_t gpa;       /* the page the DSDT names; 0: not described (firmware VMs), none written */
};

extern const struct device_type vmgenid_device;

#endif
