/* The PC's reset control register at port 0xcf9 (devices/pc_reset.c). */
#ifndef DEVICES_PC_RESET_H
#define DEVICES_PC_RESET_H

#include "core/device.h"

#define PC_RESET_PORT 0xcf9
#define PC_RESET_CPU  0x04 /* the bit that resets; 0x02 alone only arms a hard reset */

extern const struct device_type pc_reset_device;

#endif
