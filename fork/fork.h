/*
 * Forking a running VM copy-on-write.
 *
 * vm_fork() pauses every vCPU of the parent at a consistent point, captures
 * the complete vCPU, VM and device state, and creates count children (from
 * warm shells when the vmm has them) whose RAM maps the parent's frozen base
 * MAP_PRIVATE. The base never changes again: at the first fork the parent
 * itself moves to a MAP_PRIVATE mapping of it and the memfd is sealed against
 * writes. When a warm shell has premapped the parent's RAM, the parent moves
 * into that shell's KVM machine instead (its state loaded there), and its old
 * machine, the only shared mapping of the RAM, is torn down in the background
 * before the seal; otherwise it remaps its own RAM, which costs in proportion
 * to the pages the guest had mapped. Pages the parent wrote since the base was frozen are copied into
 * each child. Children continue from the same instruction with the same
 * registers, devices and memory, each with its own id and console. A
 * running parent that is to go on is resumed as soon as its state and its
 * own pages are copied out, before its children are made.
 */
#ifndef FORK_FORK_H
#define FORK_FORK_H

#include <stdbool.h>
#include <stdint.h>

struct device_config;
struct vm;

#define FORK_MAX_COUNT 4096

struct fork_request {
	unsigned count;             /* 1..FORK_MAX_COUNT */
	bool start_children;        /* run them at once (else they are paused: vm_resume() runs them) */
	bool resume_parent;         /* let the parent go on afterwards (else it stays paused) */
	/*
	 * Optional: each clone's own backends, by table place (NULL entries: the
	 * parent's argument), given to the devices' rebind() with "%u" left for
	 * them to make the clone's id. Every one named must be on in the parent
	 * and able to rebind; a device that refuses its argument fails the fork.
	 */
	const struct device_config *devices;
};

struct fork_stats {
	uint64_t paused_ns;         /* parent's vCPUs out of the guest (by this fork) */
	uint64_t freeze_ns;         /* freezing the base (first fork only) */
	uint64_t capture_ns;        /* reading vCPU, VM and device state */
	uint64_t children_ns;       /* making the children runnable */
	uint64_t total_ns;
	uint64_t pages_copied;      /* parent's private pages copied into each child */
	unsigned from_shells;       /* children that came from warm shells */
	bool moved;                 /* the parent moved into a shell instead of freezing its RAM */
};

/*
 * Fork parent (registered in a vmm) into req->count children, returned
 * referenced in children[] (vmm_put() them) and registered in the vmm.
 * Returns 0, or -errno with the parent left as it was (running if it ran):
 * -EINVAL (bad count, parent stopped), -ENOMEM, -ENOSPC, or what KVM said.
 */
int vm_fork(struct vm *parent, const struct fork_request *req, struct vm **children,
	    struct fork_stats *stats);

/*
 * Whether every device devices names (a fork request's) is on in parent and
 * can rebind, its argument within DEVICE_ARG_MAX: checked before anything is
 * paused, so a request no clone could take forks nothing. 0, -EINVAL or
 * -ENAMETOOLONG. (Whether a device takes the argument, its rebind() says.)
 */
int fork_check_devices(const struct vm *parent, const struct device_config *devices);

/*
 * What a fork sends elsewhere (fork/procfork.h): capture the paused parent
 * (op_lock held, registered in a vmm) once, freezing its base at the first
 * fork. *snap and *private_pages stay the parent's (its fork cache): valid
 * until it runs again or is destroyed. Fills st's freeze, capture and page
 * counts. Returns 0, -EINVAL (not paused, no vmm) or -errno.
 */
struct vm_snapshot;
struct mem_ranges;
int fork_capture(struct vm *parent, struct vm_snapshot **snap, struct mem_ranges **private_pages,
		 struct fork_stats *st);

/*
 * The guest wrote count to the control device's FORK register; self is the
 * vCPU that wrote it (the calling thread). Forks with fork() semantics and
 * sets FORK_RESULT / FORK_FIRST_ID (devices/ctl_abi.h).
 */
struct vcpu;
void vm_guest_fork(struct vm *vm, struct vcpu *self, uint64_t count);

/*
 * Let vm reach the fork engine (vmm/vm.h's struct vm_guest_ops): its guest's
 * fork, mark and reset requests, and the freeing of what this layer hangs on
 * it. Registering a VM (vmm_add()) does it; a VM outside a registry can mark
 * and reset once it is done.
 */
void vm_attach_fork_engine(struct vm *vm);
/* The fork engine's hooks, for a layer above whose own hooks wrap them (server/fuzz.c). */
const struct vm_guest_ops *vm_fork_engine_ops(void);
/* Forget the state cached by a fork (the VM ran, or is going away). */
void vm_drop_cached_state(struct vm *vm);

#endif
