/*
 * The debug console at port 0x402, as QEMU's isa-debugcon: bytes written go
 * to the VM's console, a read says 0xe9. SeaBIOS prints its banner there and
 * nowhere else (docs/seabios.md). Optional, turned on by vm-fork run's
 * --firmware: while off, the port reads 0xff and writes are dropped. No state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "devices/debugcon.h"

struct debugcon {
	struct device_host host;
	bool on;
};

static void debugcon_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debugcon *d = dev;

	if (!is_write) {
		memset(data, d->on ? 0 : 0xff, len);
		if (d->on)
			data[0] = DEBUGCON_READBACK;
		return;
	}
	if (d->on && d->host.console_out)
		d->host.console_out(d->host.opaque, data, len);
}

static const struct bus_dev_ops debugcon_ops = { .name = "debugcon", .io = debugcon_io };

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct debugcon *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->host = *host;
	ret = bus_register(bus, BUS_PIO, DEBUGCON_PORT, 1, &debugcon_ops, d);
	if (ret < 0) {
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

static int dev_configure(void *dev, const char *arg)
{
	((struct debugcon *)dev)->on = true;
	return 0;
}

static void dev_destroy(void *dev)
{
	free(dev);
}

static void dev_save(void *dev, void *state)
{
}

static int dev_check(const void *state)
{
	return 0;
}

static int dev_restore(void *dev, const void *state)
{
	return 0;
}

const struct device_type debugcon_device = {
	.name = "debugcon@402", .option = "debugcon", .state_size = 0,
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore,
};
