/*
 * The debug console at port 0x402, as QEMU's isa-debugcon: bytes written are
 * appended to a file of their own, a read says 0xe9. SeaBIOS's debug trace
 * goes there (docs/seabios.md); not to the console, where its serial console
 * writes the same lines a few bytes at a time and the two would interleave.
 * Optional, turned on by vm-fork run's --debugcon FILE: while off, the port
 * reads 0xff (SeaBIOS then stops writing to it) and writes are dropped. No state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/log.h"
#include "devices/debugcon.h"

struct debugcon {
	int fd;                 /* the file; -1 while off */
};

static void debugcon_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debugcon *d = dev;

	if (!is_write) {
		memset(data, d->fd >= 0 ? 0 : 0xff, len);
		if (d->fd >= 0)
			data[0] = DEBUGCON_READBACK;
		return;
	}
	/* A full disk or a slow file loses debug bytes, never the guest's time. */
	if (d->fd >= 0 && write(d->fd, data, len) < 0)
		return;
}

static const struct bus_dev_ops debugcon_ops = { .name = "debugcon", .io = debugcon_io };

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct debugcon *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->fd = -1;
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
	struct debugcon *d = dev;

	d->fd = open(arg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (d->fd < 0) {
		int err = errno;

		pr_err("debugcon: cannot open %s: %s", arg, strerror(err));
		return -err;
	}
	return 0;
}

static void dev_destroy(void *dev)
{
	struct debugcon *d = dev;

	if (d->fd >= 0)
		close(d->fd);
	free(d);
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
