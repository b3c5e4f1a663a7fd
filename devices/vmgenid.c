/* VMGenID (devices/vmgenid.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/aml.h"
#include "core/layout.h"
#include "core/log.h"
#include "core/memory.h"
#include "devices/vmgenid.h"

struct vmgenid {
	struct device_host host;
	struct vmgenid_state st;
};

static int new_guid(struct vmgenid *g)
{
	if (getrandom(g->st.guid, sizeof(g->st.guid), 0) != (ssize_t)sizeof(g->st.guid))
		return -errno;
	return g->st.gpa ? guest_write(g->host.mem, g->st.gpa, g->st.guid, sizeof(g->st.guid)) : 0;
}

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct vmgenid *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->host = *host;
	*out = g;
	return 0;
}

static void dev_destroy(void *dev)
{
	free(dev);
}

static void dev_save(void *dev, void *state)
{
	memcpy(state, &((struct vmgenid *)dev)->st, sizeof(struct vmgenid_state));
}

static int dev_check(const void *state)
{
	const struct vmgenid_state *st = state;

	return st->gpa == 0 || st->gpa == LAYOUT_VMGENID ? 0 : -EINVAL;
}

static int dev_restore(void *dev, const void *state)
{
	memcpy(&((struct vmgenid *)dev)->st, state, sizeof(struct vmgenid_state));
	return 0;
}

/*
 * The DSDT is built once, as the VM boots: the page the ADDR package names
 * gets its first ID then too. The _CID is the one Linux's driver matches.
 */
static int dev_describe(void *dev, struct aml *dsdt)
{
	const uint64_t addr[2] = { LAYOUT_VMGENID & 0xffffffffu, LAYOUT_VMGENID >> 32 };
	struct vmgenid *g = dev;
	int ret;

	g->st.gpa = LAYOUT_VMGENID;
	ret = new_guid(g);

	if (ret < 0)
		return ret;
	aml_device(dsdt, "VGEN");
	aml_name_string(dsdt, "_HID", "VMGENCTR");
	aml_name_string(dsdt, "_CID", "VM_GEN_COUNTER");
	aml_name_string(dsdt, "_DDN", "VM_GEN_COUNTER");
	aml_name_package(dsdt, "ADDR", addr, 2);
	aml_end(dsdt);
	return 0;
}

static int dev_forked(void *dev)
{
	struct vmgenid *g = dev;
	int ret = new_guid(g);

	if (ret < 0) {
		pr_err("VMGenID: cannot give the clone a new ID: %s", strerror(-ret));
		return ret;
	}
	g->st.changes++;
	if (g->host.acpi_event)
		g->host.acpi_event(g->host.opaque, ACPI_EVENT_VMGENID);
	return 0;
}

const struct device_type vmgenid_device = {
	.name = "vmgenid", .state_size = sizeof(struct vmgenid_state),
	.create = dev_create, .destroy = dev_destroy, .save = dev_save, .check = dev_check,
	.restore = dev_restore, .describe = dev_describe, .forked = dev_forked,
};
