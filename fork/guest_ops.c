/*
 * The fork engine as the VM sees it: the hooks (struct vm_guest_ops) through
 * which a VM, a layer below, reaches fork, mark and reset, and this layer's
 * state hung on it (the fork cache, the reset point).
 */
#include "fork/fork.h"
#include "fork/reset.h"
#include "fork/vmm.h"
#include "vmm/vm.h"

static void guest_resumed(struct vm *vm)
{
	vm_drop_cached_state(vm);
}

static void guest_stopped(struct vm *vm)
{
	if (vm->vmm)
		vmm_notify(vm->vmm);
}

static void guest_release(struct vm *vm)
{
	vm_drop_cached_state(vm);
	vm_drop_reset_point(vm);
}

static const struct vm_guest_ops fork_guest_ops = {
	.fork = vm_guest_fork,
	.mark = vm_guest_mark,
	.reset = vm_guest_reset,
	.resumed = guest_resumed,
	.stopped = guest_stopped,
	.release = guest_release,
};

/* A layer above that installed its own ops (which wrap these) keeps them. */
void vm_attach_fork_engine(struct vm *vm)
{
	if (!vm->guest_ops)
		vm->guest_ops = &fork_guest_ops;
}

const struct vm_guest_ops *vm_fork_engine_ops(void)
{
	return &fork_guest_ops;
}
