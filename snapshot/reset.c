#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "snapshot/capture.h"
#include "snapshot/reset.h"
#include "snapshot/vm_snapshot.h"
#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

struct reset_point {
	struct vm_capture cap;    /* state, and the pages owned at the mark with their contents */
	uint64_t counter_gpa;     /* where to store RESETS after a reset, 0: nowhere */
};

void vm_drop_reset_point(struct vm *vm)
{
	struct reset_point *rp = vm->reset_point;

	if (!rp)
		return;
	vm_capture_free(&rp->cap);
	free(rp);
	vm->reset_point = NULL;
}

int vm_mark_reset_point_locked(struct vm *vm)
{
	struct reset_point *rp = calloc(1, sizeof(*rp));
	int ret;

	if (!rp)
		return -ENOMEM;
	/* The pages it owns at the mark are kept: a reset drops them with the rest. */
	ret = vm_capture(vm, true, &rp->cap);
	if (ret < 0) {
		free(rp);
		return ret;
	}
	vm_drop_reset_point(vm);
	vm->reset_point = rp;
	return 0;
}

static int drop_written(struct vm *vm, struct reset_stats *st)
{
	struct mem_ranges written;
	uint64_t t = now_ns();
	int ret = guest_mem_private_ranges(&vm->mem, &written);

	st->scan_ns = now_ns() - t;
	if (ret < 0)
		return ret;
	t = now_ns();
	for (unsigned i = 0; i < written.n && !ret; i++)
		if (madvise(vm->mem.host + written.r[i].off, written.r[i].len, MADV_DONTNEED) < 0)
			ret = -errno;
	st->pages_dropped = written.pages;
	st->drop_ns = now_ns() - t;
	mem_ranges_free(&written);
	return ret;
}

/* Count the reset, and store the count where the guest asked (checked like any GPA). */
static void tell_guest(struct vm *vm, const struct reset_point *rp)
{
	uint64_t resets;

	ctl_count_reset(&vm->ctl);
	if (!rp->counter_gpa)
		return;
	pthread_mutex_lock(&vm->ctl.lock);
	resets = vm->ctl.resets;
	pthread_mutex_unlock(&vm->ctl.lock);
	if (guest_write(&vm->mem, rp->counter_gpa, &resets, sizeof(resets)) < 0)
		vm->ctl.bad_accesses++;
}

int vm_reset_locked(struct vm *vm, struct reset_stats *stats)
{
	struct reset_point *rp = vm->reset_point;
	struct reset_stats st = { 0 };
	uint64_t t0 = now_ns(), t;
	int ret;

	if (!rp)
		return -ENOENT;
	ret = drop_written(vm, &st);
	if (!ret) {
		vm_capture_put_pages(&rp->cap, &vm->mem);
		st.pages_restored = rp->cap.pages.pages;
		t = now_ns();
		ret = vm_snapshot_reload(vm, &rp->cap.state);
		st.load_ns = now_ns() - t;
	}
	if (!ret)
		tell_guest(vm, rp);
	st.total_ns = now_ns() - t0;
	if (stats)
		*stats = st;
	return ret;
}

static int act_mark(struct vm *vm, void *arg)
{
	int ret = vm_mark_reset_point_locked(vm);

	if (!ret && arg)
		vm->reset_point->counter_gpa = *(const uint64_t *)arg;
	return ret;
}

static int act_reset(struct vm *vm, void *arg)
{
	return vm_reset_locked(vm, arg);
}

int vm_mark_reset_point(struct vm *vm)
{
	return vm_while_paused(vm, act_mark, NULL);
}

int vm_reset(struct vm *vm, struct reset_stats *st)
{
	return vm_while_paused(vm, act_reset, st);
}

/* Run act with every other vCPU parked and this one's exit completed. */
static int from_vcpu(struct vm *vm, struct vcpu *self, int (*act)(struct vm *, void *),
		     void *arg)
{
	int ret;

	if (!self)
		return -EINVAL;
	if (!vm_op_lock_from_vcpu(vm))
		return -EBUSY;
	ret = vm_pause_locked(vm, self);
	if (!ret) {
		ret = act(vm, arg);
		vm_resume_locked(vm);
	}
	pthread_mutex_unlock(&vm->op_lock);
	return ret;
}

void vm_guest_mark(struct vm *vm, struct vcpu *self, uint64_t counter_gpa)
{
	ctl_set_mark_result(&vm->ctl, from_vcpu(vm, self, act_mark, &counter_gpa));
}

void vm_guest_reset(struct vm *vm, struct vcpu *self)
{
	struct reset_stats st;
	int ret = from_vcpu(vm, self, act_reset, &st);

	if (ret < 0 && ret != -ENOENT)
		pr_warn("VM %llu: reset failed: %d", (unsigned long long)vm->id, ret);
}
