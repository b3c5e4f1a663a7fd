#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "snapshot/reset.h"
#include "snapshot/vm_snapshot.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

struct reset_point {
	struct vm_snapshot state;
	uint64_t counter_gpa;     /* where to store RESETS after a reset, 0: nowhere */
	struct mem_ranges owned;  /* private pages at the mark ... */
	uint8_t *owned_data;      /* ... and their contents */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vm_drop_reset_point(struct vm *vm)
{
	struct reset_point *rp = vm->reset_point;

	if (!rp)
		return;
	vm_snapshot_free(&rp->state);
	mem_ranges_free(&rp->owned);
	free(rp->owned_data);
	free(rp);
	vm->reset_point = NULL;
}

/* Keep a copy of the pages the VM owns at the mark: a reset drops them with the rest. */
static int save_owned(struct vm *vm, struct reset_point *rp)
{
	uint8_t *p;
	int ret = guest_mem_private_ranges(&vm->mem, &rp->owned);

	if (ret < 0 || !rp->owned.pages)
		return ret;
	p = rp->owned_data = malloc(rp->owned.pages * PAGE_SIZE);
	if (!p)
		return -ENOMEM;
	for (unsigned i = 0; i < rp->owned.n; i++) {
		memcpy(p, vm->mem.host + rp->owned.r[i].off, rp->owned.r[i].len);
		p += rp->owned.r[i].len;
	}
	return 0;
}

int vm_mark_reset_point_locked(struct vm *vm)
{
	struct reset_point *rp = calloc(1, sizeof(*rp));
	int ret;

	if (!rp)
		return -ENOMEM;
	if (!vm->vmm) { /* the MSR list to save lives there */
		free(rp);
		return -EINVAL;
	}
	ret = guest_mem_freeze(&vm->mem);
	if (!ret)
		ret = save_owned(vm, rp);
	if (!ret)
		ret = vm_snapshot_capture(vm, vm->vmm->msrs, &rp->state);
	if (ret < 0) {
		mem_ranges_free(&rp->owned);
		free(rp->owned_data);
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

static void restore_owned(struct vm *vm, const struct reset_point *rp, struct reset_stats *st)
{
	const uint8_t *p = rp->owned_data;

	for (unsigned i = 0; i < rp->owned.n; i++) {
		memcpy(vm->mem.host + rp->owned.r[i].off, p, rp->owned.r[i].len);
		p += rp->owned.r[i].len;
	}
	st->pages_restored = rp->owned.pages;
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
		restore_owned(vm, rp, &st);
		t = now_ns();
		ret = vm_snapshot_reload(vm, &rp->state);
		st.load_ns = now_ns() - t;
	}
	if (!ret)
		tell_guest(vm, rp);
	st.total_ns = now_ns() - t0;
	if (stats)
		*stats = st;
	return ret;
}

/* Pause (unless paused), act, resume (unless it was paused). */
static int with_vm_paused(struct vm *vm, int (*act)(struct vm *, void *), void *arg)
{
	bool was_running;
	int ret;

	pthread_mutex_lock(&vm->op_lock);
	was_running = vm_run_state(vm) == VM_STATE_RUNNING;
	ret = was_running ? vm_pause_locked(vm, NULL) : 0;
	if (!ret && !was_running && vm_run_state(vm) != VM_STATE_PAUSED)
		ret = -EINVAL;
	if (!ret)
		ret = act(vm, arg);
	if (was_running)
		vm_resume_locked(vm);
	pthread_mutex_unlock(&vm->op_lock);
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
	return with_vm_paused(vm, act_mark, NULL);
}

int vm_reset(struct vm *vm, struct reset_stats *st)
{
	return with_vm_paused(vm, act_reset, st);
}

/* As for a guest fork: give way to a host operation that is pausing this VM. */
static bool op_lock_from_vcpu(struct vm *vm)
{
	while (pthread_mutex_trylock(&vm->op_lock)) {
		if (__atomic_load_n(&vm->pause_requested, __ATOMIC_ACQUIRE) || vm_stopping(vm))
			return false;
		sched_yield();
	}
	return true;
}

/* Run act with every other vCPU parked and this one's exit completed. */
static int from_vcpu(struct vm *vm, struct vcpu *self, int (*act)(struct vm *, void *),
		     void *arg)
{
	int ret;

	if (!self)
		return -EINVAL;
	if (!op_lock_from_vcpu(vm))
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
