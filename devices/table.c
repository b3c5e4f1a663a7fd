/*
 * The device table (core/device.h): every emulated device of a VM, in the
 * order they are made. A new device is its file and a line here.
 */
#include <string.h>

#include "core/device.h"
#include "devices/acpi_pm.h"
#include "devices/cmos.h"
#include "devices/debugcon.h"
#include "devices/fw_cfg.h"
#include "devices/ged.h"
#include "devices/pc_reset.h"
#include "devices/i8042.h"
#include "devices/uart.h"
#include "devices/vmgenid.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"

const struct device_type *const device_table[] = {
	&uart_device,
	&i8042_device,
	&acpi_pm_device,
	&ged_device,
	&vmgenid_device,
	&virtio_rng_device,
	&virtio_blk_device,
	&virtio_vsock_device,
	&virtio_net_device,
	&debugcon_device,
	&fw_cfg_device,
	&pc_reset_device,
	&cmos_device,
	NULL,
};

int device_index(const struct device_type *type)
{
	for (int i = 0; device_table[i]; i++)
		if (device_table[i] == type)
			return i;
	return -1;
}

_Static_assert(sizeof(device_table) / sizeof(device_table[0]) - 1 <= DEVICE_MAX,
	       "DEVICE_MAX is too small for the table");

int device_by_option(const char *name)
{
	for (int i = 0; name && device_table[i]; i++)
		if (device_table[i]->option && !strcmp(device_table[i]->option, name))
			return i;
	return -1;
}
