/*
 * ACPI power registers (devices/acpi_pm.h). Three bytes of state at most, so
 * atomics instead of a lock: the host's poweroff and reset callbacks stop
 * vCPUs, and must not run under a lock a vCPU could be waiting for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/layout.h"
#include "core/log.h"
#include "devices/acpi_pm.h"

#define REG_SLEEP_CTL (ACPI_SLEEP_CTL_PORT - ACPI_PM_PORT)
#define REG_SLEEP_STS (ACPI_SLEEP_STS_PORT - ACPI_PM_PORT)
#define REG_RESET     (ACPI_RESET_PORT - ACPI_PM_PORT)
#define NR_REGS       3

struct acpi_pm {
	struct device_host host;
	uint8_t sleep_sts;   /* WAK_STS or 0 */
	uint64_t ignored;    /* updated atomically */
};

static void ignore(struct acpi_pm *pm)
{
	__atomic_fetch_add(&pm->ignored, 1, __ATOMIC_RELAXED);
}

uint64_t acpi_pm_ignored(const struct acpi_pm *pm)
{
	return __atomic_load_n(&pm->ignored, __ATOMIC_RELAXED);
}

/*
 * SLP_EN with S5's type powers off. Any other sleep is one we do not offer:
 * the machine "wakes" at once (WAK_STS), so a guest waiting for the wake-up
 * goes on instead of spinning forever.
 */
static void write_sleep_ctl(struct acpi_pm *pm, uint8_t val)
{
	unsigned type = (val & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT;

	if (!(val & ACPI_SLP_EN)) {
		ignore(pm);
	} else if (type == ACPI_PM_S5_TYPE) {
		pr_debug("acpi-pm: the guest entered S5: power-off");
		pm->host.poweroff(pm->host.opaque);
	} else {
		__atomic_fetch_or(&pm->sleep_sts, ACPI_WAK_STS, __ATOMIC_RELAXED);
		ignore(pm);
	}
}

static void write_reset(struct acpi_pm *pm, uint8_t val)
{
	if (val != ACPI_RESET_VALUE) {
		ignore(pm);
		return;
	}
	/* Said apart from the i8042's reset, which stops the VM the same way. */
	pr_debug("acpi-pm: the guest wrote the ACPI reset register: reset");
	pm->host.reset_machine(pm->host.opaque);
}

static void write_reg(struct acpi_pm *pm, unsigned reg, uint8_t val)
{
	switch (reg) {
	case REG_SLEEP_CTL:
		write_sleep_ctl(pm, val);
		break;
	case REG_SLEEP_STS: /* write 1 to clear */
		__atomic_fetch_and(&pm->sleep_sts, (uint8_t)~val, __ATOMIC_RELAXED);
		break;
	default:
		write_reset(pm, val);
	}
}

/* Control and reset are write-only: they read 0. */
static uint8_t read_reg(struct acpi_pm *pm, unsigned reg)
{
	return reg == REG_SLEEP_STS ? __atomic_load_n(&pm->sleep_sts, __ATOMIC_RELAXED) : 0;
}

/* A wider access reaches consecutive registers, as on byte-wide I/O ports. */
static void pm_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	for (uint32_t i = 0; i < len; i++) {
		unsigned reg = (unsigned)(offset + i);

		if (reg >= NR_REGS) {
			if (is_write)
				ignore(dev);
			else
				data[i] = 0;
		} else if (is_write) {
			write_reg(dev, reg, data[i]);
		} else {
			data[i] = read_reg(dev, reg);
		}
	}
}

static const struct bus_dev_ops pm_bus_ops = {
	.name = "acpi-pm",
	.io = pm_io,
};

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int ret;

	if (!pm)
		return -ENOMEM;
	pm->host = *host;
	ret = bus_register(bus, BUS_PIO, ACPI_PM_PORT, NR_REGS, &pm_bus_ops, pm);
	*out = pm;
	return ret;
}

static void dev_destroy(void *dev)
{
	free(dev);
}

static void dev_save(void *dev, void *state)
{
	struct acpi_pm *pm = dev;
	struct acpi_pm_state st = { .sleep_sts = __atomic_load_n(&pm->sleep_sts, __ATOMIC_RELAXED) };

	memcpy(state, &st, sizeof(st));
}

static int dev_check(const void *state)
{
	const struct acpi_pm_state *st = state;

	return st->sleep_sts & ~ACPI_WAK_STS ? -EINVAL : 0;
}

static int dev_restore(void *dev, const void *state)
{
	struct acpi_pm *pm = dev;

	if (dev_check(state) < 0)
		return -EINVAL;
	__atomic_store_n(&pm->sleep_sts, ((const struct acpi_pm_state *)state)->sleep_sts,
			 __ATOMIC_RELAXED);
	return 0;
}

const struct device_type acpi_pm_device = {
	.name = "acpi-pm", .state_size = sizeof(struct acpi_pm_state),
	.create = dev_create, .destroy = dev_destroy, .save = dev_save, .check = dev_check,
	.restore = dev_restore,
};
