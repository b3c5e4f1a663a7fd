/*
 * One way for a VM to become a clone (fork/clone.h): pages, state, identity
 * and console, in that order, for every kind of clone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/device.h"
#include "fork/clone.h"
#include "state/vm_snapshot.h"
#include "vmm/vm.h"

int clone_console_spec(const char *fmt, uint64_t id, char *out, size_t size)
{
	const char *pct;
	int n;

	fmt = fmt ? fmt : "none";
	pct = strstr(fmt, "%u");
	if (!pct)
		n = snprintf(out, size, "%s", fmt);
	else
		n = snprintf(out, size, "%.*s%llu%s", (int)(pct - fmt), fmt, (unsigned long long)id,
			     pct + 2);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void set_identity(struct vm *vm, const struct vm_snapshot *snap,
			 const struct clone_identity *id)
{
	struct ctl_state st = snap->ctl;

	st.clone_id = id->id;
	st.generation = id->generation;
	st.child_index = id->child_index;
	st.fork_result = 0;
	st.fork_first_id = 0;
	ctl_restore(&vm->ctl, &st);
	vm->id = id->id;
	vm->parent_id = id->parent_id;
}

/* A fork request's backends for this clone, in place of its parent's. */
static int rebind_devices(struct vm *vm, const struct device_config *devices)
{
	int ret = 0;

	for (unsigned i = 0; !ret && devices && device_table[i]; i++)
		if (devices->args[i])
			ret = vm_rebind_device(vm, i, devices->args[i]);
	return ret;
}

int vm_become_clone(struct vm *vm, const struct vm_snapshot *snap, bool state_loaded,
		    const struct clone_pages *pages, const struct clone_identity *id,
		    const char *console_fmt)
{
	char console[sizeof(vm->console_spec)];
	int ret = pages && pages->put ? pages->put(vm, pages->arg) : 0;

	if (!ret && !state_loaded)
		ret = vm_snapshot_load(vm, snap);
	if (ret < 0)
		return ret;
	set_identity(vm, snap, id);
	/*
	 * Before its vCPUs run: the host's time, a new VMGenID, its firmware's
	 * fw_cfg contents, its own backends.
	 */
	ret = vm_snapshot_catch_up(vm, snap);
	if (!ret)
		ret = vm_devices_forked(vm);
	if (!ret)
		ret = vm_firmware_forked(vm);
	if (!ret)
		ret = rebind_devices(vm, id->devices);
	if (!ret)
		ret = vm_devices_attach(vm);
	if (ret < 0)
		return ret;
	ret = clone_console_spec(console_fmt, id->id, console, sizeof(console));
	return ret < 0 ? ret : vm_set_console(vm, console);
}
