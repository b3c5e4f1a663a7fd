/*
 * The reset control register at port 0xcf9: SeaBIOS reboots through it, after
 * "No bootable device." when boot-fail-wait is 0 (docs/seabios.md), and the
 * VM stops as on any reset. Optional, on with --firmware: off, the port reads
 * 0xff and ignores writes. Its state is the last value written.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "devices/pc_reset.h"

struct pc_reset_state {
	uint8_t value;
};

struct pc_reset {
	struct device_host host;
	bool on;
	uint8_t value;
};

static void pc_reset_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pc_reset *r = dev;

	if (!is_write) {
		memset(data, r->on ? 0 : 0xff, len);
		if (r->on)
			data[0] = __atomic_load_n(&r->value, __ATOMIC_RELAXED);
		return;
	}
	if (!r->on)
		return;
	__atomic_store_n(&r->value, data[0] & ~PC_RESET_CPU, __ATOMIC_RELAXED);
	if (data[0] & PC_RESET_CPU && r->host.reset_machine)
		r->host.reset_machine(r->host.opaque);
}

static const struct bus_dev_ops pc_reset_ops = { .name = "pc-reset", .io = pc_reset_io };

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct pc_reset *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->host = *host;
	ret = bus_register(bus, BUS_PIO, PC_RESET_PORT, 1, &pc_reset_ops, r);
	if (ret < 0) {
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

static int dev_configure(void *dev, const char *arg)
{
	((struct pc_reset *)dev)->on = true;
	return 0;
}

static void dev_destroy(void *dev)
{
	free(dev);
}

static void dev_save(void *dev, void *state)
{
	struct pc_reset_state st = { __atomic_load_n(&((struct pc_reset *)dev)->value,
						     __ATOMIC_RELAXED) };

	memcpy(state, &st, sizeof(st));
}

static int dev_check(const void *state)
{
	return ((const struct pc_reset_state *)state)->value & PC_RESET_CPU ? -EINVAL : 0;
}

static int dev_restore(void *dev, const void *state)
{
	if (dev_check(state) < 0)
		return -EINVAL;
	__atomic_store_n(&((struct pc_reset *)dev)->value,
			 ((const struct pc_reset_state *)state)->value, __ATOMIC_RELAXED);
	return 0;
}

const struct device_type pc_reset_device = {
	.name = "pc-reset@cf9", .option = "pc_reset", .state_size = sizeof(struct pc_reset_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore,
};
