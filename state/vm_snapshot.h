/*
 * The whole state of a paused VM except its RAM: every vCPU, the in-kernel
 * devices and our devices. A fork captures one and loads it into each child;
 * a snapshot on disk is one of these plus the memory file.
 */
#ifndef STATE_VM_SNAPSHOT_H
#define STATE_VM_SNAPSHOT_H

#include "core/device.h"
#include "devices/ctl.h"
#include "state/state.h"

struct vm;

struct vm_snapshot {
	unsigned ncpus;
	uint64_t mem_size;
	struct vcpu_state *vcpus;   /* ncpus of them */
	struct vm_state vm;
	struct device_state devs[DEVICE_MAX]; /* device_table[i]'s, state_size bytes of it */
	struct ctl_state ctl;
};

/* Capture a paused VM (every vCPU parked, last exits completed). */
int vm_snapshot_capture(struct vm *vm, const struct msr_list *msrs, struct vm_snapshot *snap);
/*
 * Load into vm, created with the same shape (vCPUs, RAM size, CPUID) and not
 * running. Its RAM must already hold the snapshot's memory.
 */
int vm_snapshot_load(struct vm *vm, const struct vm_snapshot *snap);
/* Load back into the VM it was captured from (a reset): skips what cannot have changed. */
int vm_snapshot_reload(struct vm *vm, const struct vm_snapshot *snap);
/* A new identity loaded from snap: its clocks move on to the host's present (vm_state_catch_up()). */
int vm_snapshot_catch_up(struct vm *vm, const struct vm_snapshot *snap);
/* Frees the vCPU states and drops the devices' live references (core/device.h hold()). */
void vm_snapshot_free(struct vm_snapshot *snap);
/*
 * The table place of a device whose state holds a live reference, which a
 * state file cannot carry to another process (a disk's layers), or -1.
 */
int vm_snapshot_local_device(const struct vm_snapshot *snap);
/* A deep copy (dst is overwritten); returns 0 or -ENOMEM. */
int vm_snapshot_copy(struct vm_snapshot *dst, const struct vm_snapshot *src);

#endif
