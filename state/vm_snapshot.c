#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/vm_snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

int vm_snapshot_capture(struct vm *vm, const struct msr_list *msrs, struct vm_snapshot *snap)
{
	int ret = 0;

	memset(snap, 0, sizeof(*snap));
	snap->vcpus = aligned_alloc(64, vm->ncpus * sizeof(*snap->vcpus));
	if (!snap->vcpus)
		return -ENOMEM;
	snap->ncpus = vm->ncpus;
	snap->mem_size = vm->mem.size;
	for (unsigned i = 0; !ret && i < vm->ncpus; i++)
		ret = vcpu_state_save(vm->vcpus[i]->fd, vm->fd, msrs, &snap->vcpus[i]);
	if (!ret)
		ret = vm_state_save(vm->fd, &snap->vm);
	if (ret < 0) {
		vm_snapshot_free(snap);
		return ret;
	}
	for (unsigned i = 0; !ret && device_table[i]; i++) {
		const char *arg = vm_device_arg(vm, i);

		snap->devs[i].on = arg != NULL;
		snprintf(snap->devs[i].arg, sizeof(snap->devs[i].arg), "%s", arg ? arg : "");
		device_table[i]->save(vm->devs[i], snap->devs[i].bytes);
		if (device_table[i]->hold)
			ret = device_table[i]->hold(vm->devs[i], &snap->devs[i].ref);
	}
	if (ret < 0) {
		vm_snapshot_free(snap);
		return ret;
	}
	ctl_save(&vm->ctl, &snap->ctl);
	return 0;
}

static int load(struct vm *vm, const struct vm_snapshot *snap, bool same_vm)
{
	int ret = 0;

	if (snap->ncpus != vm->ncpus || snap->mem_size != vm->mem.size)
		return -EINVAL;
	/* VM-wide state first: the clock and irqchips the vCPUs' LAPICs talk to. */
	ret = vm_state_restore(vm->fd, &snap->vm);
	for (unsigned i = 0; !ret && i < vm->ncpus; i++)
		ret = vcpu_state_load(vm->vcpus[i]->fd, &snap->vcpus[i], same_vm);
	if (ret < 0)
		return ret;
	ctl_restore(&vm->ctl, &snap->ctl);
	/*
	 * Devices last: they re-drive their interrupt lines into the loaded
	 * irqchip. One the snapshot had on is turned on here first (a shell's or
	 * a restored VM's devices start off).
	 */
	for (unsigned i = 0; !ret && device_table[i]; i++) {
		ret = device_table[i]->check(snap->devs[i].bytes);
		if (!ret && snap->devs[i].on && !same_vm)
			ret = vm_configure_device(vm, i, snap->devs[i].arg);
		if (!ret)
			ret = device_table[i]->restore(vm->devs[i], snap->devs[i].bytes);
		if (!ret && device_table[i]->adopt)
			ret = device_table[i]->adopt(vm->devs[i], snap->devs[i].ref);
	}
	return ret;
}

int vm_snapshot_load(struct vm *vm, const struct vm_snapshot *snap)
{
	return load(vm, snap, false);
}

int vm_snapshot_reload(struct vm *vm, const struct vm_snapshot *snap)
{
	return load(vm, snap, true);
}

int vm_snapshot_catch_up(struct vm *vm, const struct vm_snapshot *snap)
{
	int fds[VM_MAX_CPUS];

	if (snap->ncpus != vm->ncpus)
		return -EINVAL;
	for (unsigned i = 0; i < vm->ncpus; i++)
		fds[i] = vm->vcpus[i]->fd;
	return vm_state_catch_up(vm->fd, fds, snap->vcpus, vm->ncpus, &snap->vm);
}

void vm_snapshot_free(struct vm_snapshot *snap)
{
	free(snap->vcpus);
	snap->vcpus = NULL;
	for (unsigned i = 0; i < DEVICE_MAX; i++) {
		device_ref_put(snap->devs[i].ref);
		snap->devs[i].ref = NULL;
	}
}

int vm_snapshot_local_device(const struct vm_snapshot *snap)
{
	for (unsigned i = 0; i < DEVICE_MAX; i++)
		if (snap->devs[i].ref)
			return (int)i;
	return -1;
}


int vm_snapshot_copy(struct vm_snapshot *dst, const struct vm_snapshot *src)
{
	*dst = *src;
	/* The devices' live references: one more each, or none when this fails. */
	for (unsigned i = 0; i < DEVICE_MAX; i++)
		dst->devs[i].ref = NULL;
	dst->vcpus = aligned_alloc(64, src->ncpus * sizeof(*dst->vcpus));
	if (!dst->vcpus)
		return -ENOMEM;
	memcpy(dst->vcpus, src->vcpus, src->ncpus * sizeof(*dst->vcpus));
	for (unsigned i = 0; i < DEVICE_MAX; i++)
		dst->devs[i].ref = device_ref_get(src->devs[i].ref);
	return 0;
}
