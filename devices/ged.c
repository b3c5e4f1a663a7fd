/* The ACPI Generic Event Device (devices/ged.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/aml.h"
#include "core/bus.h"
#include "core/layout.h"
#include "devices/ged.h"

#define GED_REG_SIZE 4
/* Microsoft's VMGenID specification: a device-specific Notify, 0x80, says the ID changed. */
#define VMGENID_NOTIFY 0x80

struct ged {
	struct device_host host;
	uint32_t pending;   /* ACPI_EVENT_* bits; updated atomically */
};

void ged_raise(struct ged *ged, uint32_t events)
{
	__atomic_fetch_or(&ged->pending, events, __ATOMIC_SEQ_CST);
	/* Edge-triggered: the rising edge is the event, so let the line fall again. */
	ged->host.set_irq(ged->host.opaque, GSI_GED, 1);
	ged->host.set_irq(ged->host.opaque, GSI_GED, 0);
}

/*
 * Reading the register takes the pending events, so each is seen once; the
 * rest of the page reads 0 and writes are dropped.
 */
static void ged_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct ged *ged = dev;
	uint32_t events;

	if (is_write)
		return;
	memset(data, 0, len);
	if (offset != 0 || len < GED_REG_SIZE)
		return;
	events = __atomic_exchange_n(&ged->pending, 0, __ATOMIC_SEQ_CST);
	memcpy(data, &events, sizeof(events)); /* x86: little-endian like the guest */
}

static const struct bus_dev_ops ged_bus_ops = {
	.name = "acpi-ged",
	.io = ged_io,
};

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct ged *ged = calloc(1, sizeof(*ged));
	int ret;

	if (!ged)
		return -ENOMEM;
	ged->host = *host;
	ret = bus_register(bus, BUS_MMIO, LAYOUT_GED_MMIO, LAYOUT_GED_SIZE, &ged_bus_ops, ged);
	*out = ged;
	return ret;
}

static void dev_destroy(void *dev)
{
	free(dev);
}

static void dev_save(void *dev, void *state)
{
	struct ged_state st = { .pending = __atomic_load_n(&((struct ged *)dev)->pending,
							   __ATOMIC_SEQ_CST) };

	memcpy(state, &st, sizeof(st));
}

static int dev_check(const void *state)
{
	(void)state; /* any set of bits may be pending: the guest ignores ones it has no Notify for */
	return 0;
}

/*
 * No new edge: one raised before the capture is already in the IOAPIC or
 * LAPIC state that the snapshot carries.
 */
static int dev_restore(void *dev, const void *state)
{
	const struct ged_state *st = state;

	__atomic_store_n(&((struct ged *)dev)->pending, st->pending, __ATOMIC_SEQ_CST);
	return 0;
}

/* _EVT: take the events from the register (one read, which clears it), Notify each. */
static void describe_evt(struct aml *dsdt)
{
	aml_method(dsdt, "_EVT", 1, true);
	aml_store(dsdt);
	aml_name_ref(dsdt, "EVTS");
	aml_local(dsdt, 0);
	aml_if(dsdt);
	aml_and(dsdt);
	aml_local(dsdt, 0);
	aml_int(dsdt, ACPI_EVENT_VMGENID);
	aml_no_target(dsdt);
	aml_notify(dsdt, "\\_SB.VGEN", VMGENID_NOTIFY);
	aml_end(dsdt);
	aml_end(dsdt);
}

/*
 * The register is named by the OperationRegion alone: Linux's GED driver
 * (6.1) takes every resource of _CRS for an interrupt, and gives up on the
 * device at a Memory32Fixed.
 */
static int dev_describe(void *dev, struct aml *dsdt)
{
	aml_device(dsdt, "GED0");
	aml_name_string(dsdt, "_HID", "ACPI0013");
	aml_crs_begin(dsdt);
	aml_crs_irq(dsdt, GSI_GED, false, false);
	aml_crs_end(dsdt);
	aml_operation_region(dsdt, "EREG", AML_SYSTEM_MEMORY, LAYOUT_GED_MMIO, GED_REG_SIZE);
	aml_field(dsdt, "EREG", AML_DWORD_ACC);
	aml_field_unit(dsdt, "EVTS", 8 * GED_REG_SIZE);
	aml_end(dsdt);
	describe_evt(dsdt);
	aml_end(dsdt);
	return 0;
}

const struct device_type ged_device = {
	.name = "ged", .state_size = sizeof(struct ged_state),
	.create = dev_create, .destroy = dev_destroy, .save = dev_save, .check = dev_check,
	.restore = dev_restore, .describe = dev_describe,
};
