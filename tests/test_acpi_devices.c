/*
 * The acpi-pm device (sleep control, sleep status, reset) and the GED, driven
 * through the I/O bus as a guest drives them, with a host that records what
 * the devices asked of it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/bus.h"
#include "core/layout.h"
#include "devices/acpi_pm.h"
#include "devices/ged.h"

struct host_log {
	unsigned poweroffs, resets;
	unsigned edges;      /* rising edges on GSI_GED */
	int level;           /* GSI_GED's level now */
	unsigned other_gsis;
};

static struct host_log hlog;
static struct bus dev_bus;
static void *pm, *ged;

static void log_irq(void *opaque, unsigned gsi, int level)
{
	if (gsi != GSI_GED) {
		hlog.other_gsis++;
		return;
	}
	if (level && !hlog.level)
		hlog.edges++;
	hlog.level = level;
}

static void log_poweroff(void *opaque)
{
	hlog.poweroffs++;
}

static void log_reset(void *opaque)
{
	hlog.resets++;
}

static void dev_setup(void)
{
	const struct device_host host = {
		.set_irq = log_irq, .reset_machine = log_reset, .poweroff = log_poweroff,
	};

	memset(&hlog, 0, sizeof(hlog));
	bus_init(&dev_bus);
	cr_assert_eq(acpi_pm_device.create(&pm, &dev_bus, &host), 0);
	cr_assert_eq(ged_device.create(&ged, &dev_bus, &host), 0);
}

static void dev_teardown(void)
{
	acpi_pm_device.destroy(pm);
	ged_device.destroy(ged);
}

TestSuite(acpi_pm, .init = dev_setup, .fini = dev_teardown);
TestSuite(ged, .init = dev_setup, .fini = dev_teardown);

static void outb(uint16_t port, uint8_t val)
{
	cr_assert(bus_access(&dev_bus, BUS_PIO, port, &val, 1, true), "port %#x unclaimed", port);
}

static uint8_t inb(uint16_t port)
{
	uint8_t val = 0xcc;

	cr_assert(bus_access(&dev_bus, BUS_PIO, port, &val, 1, false), "port %#x unclaimed", port);
	return val;
}

/* What Linux's acpi_hw_extended_sleep() writes: SLP_TYP << 2 | SLP_EN. */
static uint8_t sleep_value(unsigned type)
{
	return (uint8_t)(type << ACPI_SLP_TYP_SHIFT | ACPI_SLP_EN);
}

Test(acpi_pm, s5_powers_off)
{
	outb(ACPI_SLEEP_STS_PORT, ACPI_WAK_STS); /* Linux clears WAK_STS first */
	outb(ACPI_SLEEP_CTL_PORT, sleep_value(ACPI_PM_S5_TYPE));
	cr_assert_eq(hlog.poweroffs, 1);
	cr_assert_eq(hlog.resets, 0);
	cr_assert_eq(acpi_pm_ignored(pm), 0);
}

Test(acpi_pm, reset_value_resets)
{
	outb(ACPI_RESET_PORT, ACPI_RESET_VALUE);
	cr_assert_eq(hlog.resets, 1);
	cr_assert_eq(hlog.poweroffs, 0);
}

Test(acpi_pm, other_writes_are_ignored_and_counted)
{
	uint8_t past = 0xff;

	outb(ACPI_RESET_PORT, 0x41);                             /* wrong reset value */
	outb(ACPI_SLEEP_CTL_PORT, ACPI_PM_S5_TYPE << ACPI_SLP_TYP_SHIFT); /* no SLP_EN */
	outb(ACPI_SLEEP_CTL_PORT, sleep_value(3));               /* S3: not offered */
	cr_assert(!bus_access(&dev_bus, BUS_PIO, ACPI_PM_PORT + 3, &past, 1, true),
		  "the port after the registers is not the device's");
	cr_assert_eq(hlog.poweroffs, 0);
	cr_assert_eq(hlog.resets, 0);
	cr_assert_eq(acpi_pm_ignored(pm), 3);
}

Test(acpi_pm, an_unoffered_sleep_wakes_at_once)
{
	cr_assert_eq(inb(ACPI_SLEEP_STS_PORT), 0);
	outb(ACPI_SLEEP_CTL_PORT, sleep_value(1));
	/* A guest polling for WAK_STS goes on instead of spinning forever. */
	cr_assert_eq(inb(ACPI_SLEEP_STS_PORT), ACPI_WAK_STS);
	outb(ACPI_SLEEP_STS_PORT, 0x01);          /* 0 in WAK_STS's place: kept */
	cr_assert_eq(inb(ACPI_SLEEP_STS_PORT), ACPI_WAK_STS);
	outb(ACPI_SLEEP_STS_PORT, ACPI_WAK_STS);  /* write 1 to clear */
	cr_assert_eq(inb(ACPI_SLEEP_STS_PORT), 0);
	cr_assert_eq(inb(ACPI_SLEEP_CTL_PORT), 0, "write-only registers read 0");
	cr_assert_eq(inb(ACPI_RESET_PORT), 0);
}

Test(acpi_pm, wide_write_reaches_consecutive_registers)
{
	uint8_t v[3] = { 0, ACPI_WAK_STS, ACPI_RESET_VALUE };

	cr_assert(bus_access(&dev_bus, BUS_PIO, ACPI_PM_PORT, v, 3, true));
	cr_assert_eq(hlog.resets, 1);
}

Test(acpi_pm, save_check_restore)
{
	struct acpi_pm_state st, bad = { .sleep_sts = 0x01 };

	cr_assert_leq(sizeof(st), acpi_pm_device.state_size);
	outb(ACPI_SLEEP_CTL_PORT, sleep_value(1));
	acpi_pm_device.save(pm, &st);
	cr_assert_eq(st.sleep_sts, ACPI_WAK_STS);
	cr_assert_eq(acpi_pm_device.check(&st), 0);
	cr_assert_eq(acpi_pm_device.check(&bad), -EINVAL, "a status bit the device never sets");
	cr_assert_eq(acpi_pm_device.restore(pm, &bad), -EINVAL);
	outb(ACPI_SLEEP_STS_PORT, ACPI_WAK_STS);
	cr_assert_eq(acpi_pm_device.restore(pm, &st), 0);
	cr_assert_eq(inb(ACPI_SLEEP_STS_PORT), ACPI_WAK_STS);
}

/* ---- GED ---- */

static uint32_t ged_read(uint64_t offset, uint32_t len)
{
	uint8_t data[8];
	uint32_t v;

	memset(data, 0xcc, sizeof(data));
	cr_assert(bus_access(&dev_bus, BUS_MMIO, LAYOUT_GED_MMIO + offset, data, len, false));
	for (uint32_t i = len; i < 4; i++)
		data[i] = 0;
	memcpy(&v, data, 4);
	return v;
}

Test(ged, raise_pulses_the_gsi_and_a_read_takes_the_events)
{
	ged_raise(ged, ACPI_EVENT_VMGENID);
	cr_assert_eq(hlog.edges, 1, "one rising edge on GSI_GED");
	cr_assert_eq(hlog.level, 0, "and the line falls again");
	cr_assert_eq(hlog.other_gsis, 0);
	cr_assert_eq(ged_read(0, 4), ACPI_EVENT_VMGENID);
	cr_assert_eq(ged_read(0, 4), 0, "a read clears what it returned");
}

Test(ged, events_accumulate_until_read)
{
	ged_raise(ged, ACPI_EVENT_VMGENID);
	ged_raise(ged, 1u << 5);
	cr_assert_eq(hlog.edges, 2);
	cr_assert_eq(ged_read(0, 4), ACPI_EVENT_VMGENID | 1u << 5);
}

Test(ged, other_accesses_read_zero_and_keep_the_events)
{
	uint8_t w[4] = { 0xff, 0xff, 0xff, 0xff };

	ged_raise(ged, ACPI_EVENT_VMGENID);
	cr_assert_eq(ged_read(0, 1), 0, "a byte read is not the register's read");
	cr_assert_eq(ged_read(4, 4), 0);
	cr_assert_eq(ged_read(LAYOUT_GED_SIZE - 4, 4), 0);
	cr_assert(bus_access(&dev_bus, BUS_MMIO, LAYOUT_GED_MMIO, w, 4, true));
	cr_assert_eq(ged_read(0, 4), ACPI_EVENT_VMGENID, "writes change nothing");
}

Test(ged, pending_events_are_saved_and_restored)
{
	struct ged_state st = { 0 }, in = { .pending = ACPI_EVENT_VMGENID };

	cr_assert_leq(sizeof(st), ged_device.state_size);
	ged_raise(ged, ACPI_EVENT_VMGENID);
	ged_device.save(ged, &st);
	cr_assert_eq(st.pending, ACPI_EVENT_VMGENID);
	cr_assert_eq(ged_read(0, 4), ACPI_EVENT_VMGENID);
	cr_assert_eq(ged_device.check(&in), 0);
	cr_assert_eq(ged_device.restore(ged, &in), 0);
	cr_assert_eq(hlog.edges, 1, "a restore does not raise a new edge");
	cr_assert_eq(ged_read(0, 4), ACPI_EVENT_VMGENID);
}
