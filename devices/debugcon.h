/* QEMU's isa-debugcon at port 0x402 (devices/debugcon.c). */
#ifndef DEVICES_DEBUGCON_H
#define DEVICES_DEBUGCON_H

#include "core/device.h"

#define DEBUGCON_PORT     0x402
#define DEBUGCON_READBACK 0xe9 /* what a read says: SeaBIOS checks it before writing on */

extern const struct device_type debugcon_device;

#endif
