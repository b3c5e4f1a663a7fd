/* The PC's CMOS RTC and NVRAM at ports 0x70/0x71 (devices/cmos.c). */
#ifndef DEVICES_CMOS_H
#define DEVICES_CMOS_H

#include <stdint.h>

#include "core/device.h"

#define CMOS_PORT_INDEX 0x70
#define CMOS_PORT_DATA  0x71
#define CMOS_SIZE       128

extern const struct device_type cmos_device;

/* Write the memory size and CPU count into NVRAM as a PC BIOS expects them. */
void cmos_set_machine(void *dev, uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned ncpus);

#endif
