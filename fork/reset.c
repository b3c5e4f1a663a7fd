#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/capture.h"
#include "fork/fork.h"
#include "fork/reset.h"
#include "fork/vmm.h"
#include "state/vm_snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

struct reset_point {
	struct vm_capture cap;    /* state, and the pages owned at the mark with their contents */
	const uint8_t *base;      /* the frozen base, read-only: every other page as at the mark */
	struct mem_ranges dirty;  /* the pages written since the last reset (kept for its buffer) */
	uint64_t counter_gpa;     /* where to store RESETS after a reset, 0: nowhere */
};

/* Dirty logging stays on once a VM was marked: a new mark only starts a new log. */
void vm_drop_reset_point(struct vm *vm)
{
	struct reset_point *rp = vm->reset_point;

	if (!rp)
		return;
	vm_capture_free(&rp->cap);
	if (rp->base)
		munmap((void *)rp->base, vm->mem.size);
	mem_ranges_free(&rp->dirty);
	free(rp);
	vm->reset_point = NULL;
}

static int map_base(struct vm *vm, struct reset_point *rp)
{
	void *p = mmap(NULL, vm->mem.size, PROT_READ, MAP_SHARED | MAP_NORESERVE, vm->mem.fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	rp->base = p;
	return 0;
}

int vm_mark_reset_point_locked(struct vm *vm)
{
	struct reset_point *rp = calloc(1, sizeof(*rp));
	int ret;

	if (!rp)
		return -ENOMEM;
	/* The pages it owns at the mark are kept: the base does not hold them. */
	ret = vm_capture(vm, true, &rp->cap);
	if (!ret)
		ret = map_base(vm, rp);
	if (!ret)
		ret = guest_mem_log_dirty(&vm->mem, vm->fd);
	if (ret < 0) {
		vm_capture_free(&rp->cap);
		if (rp->base)
			munmap((void *)rp->base, vm->mem.size);
		free(rp);
		return ret;
	}
	vm_drop_reset_point(vm);
	vm_attach_fork_engine(vm); /* which frees it with the VM */
	vm->reset_point = rp;
	return 0;
}

/*
 * Copy [off, end) back from what it held at the mark: the kept copy where the
 * VM owned the page then (ranges r, sorted; *i and *pos, the range and its
 * data offset reached so far, only move forward), else the base.
 */
static void put_back(struct reset_point *rp, uint8_t *ram, uint64_t off, uint64_t end,
		     unsigned *i, uint64_t *pos)
{
	const struct mem_ranges *own = &rp->cap.pages;

	while (off < end) {
		uint64_t chunk;

		while (*i < own->n && own->r[*i].off + own->r[*i].len <= off)
			*pos += own->r[(*i)++].len;
		if (*i < own->n && own->r[*i].off <= off) {
			uint64_t r_end = own->r[*i].off + own->r[*i].len;

			chunk = (end < r_end ? end : r_end) - off;
			memcpy(ram + off, rp->cap.data + *pos + (off - own->r[*i].off), chunk);
		} else {
			uint64_t next = *i < own->n ? own->r[*i].off : end;

			chunk = (end < next ? end : next) - off;
			memcpy(ram + off, rp->base + off, chunk);
		}
		off += chunk;
	}
}

/*
 * Only the pages written since the last reset, copied over in place: they
 * stay the VM's own, mapped, and write-protected by the log again, so the
 * next iteration's first write to each costs a write-protection fault, not
 * a page fault and a copy.
 */
static int restore_written(struct vm *vm, struct reset_point *rp, struct reset_stats *st)
{
	uint64_t t = now_ns(), pos = 0;
	unsigned own = 0;
	int ret = guest_mem_take_dirty(&vm->mem, vm->fd, &rp->dirty);

	st->log_ns = now_ns() - t;
	if (ret < 0)
		return ret;
	t = now_ns();
	for (unsigned i = 0; i < rp->dirty.n; i++)
		put_back(rp, vm->mem.host, rp->dirty.r[i].off,
			 rp->dirty.r[i].off + rp->dirty.r[i].len, &own, &pos);
	st->pages_reset = rp->dirty.pages;
	st->copy_ns = now_ns() - t;
	return 0;
}

/* Count the reset, and store the count where the guest asked (checked like any GPA). */
static void tell_guest(struct vm *vm, const struct reset_point *rp)
{
	uint64_t resets = ctl_count_reset(&vm->ctl);

	if (rp->counter_gpa && guest_write(&vm->mem, rp->counter_gpa, &resets, sizeof(resets)) < 0)
		ctl_count_bad(&vm->ctl);
}

int vm_reset_locked(struct vm *vm, struct reset_stats *stats)
{
	struct reset_point *rp = vm->reset_point;
	struct reset_stats st = { 0 };
	uint64_t t0 = now_ns(), t;
	int ret;

	if (!rp)
		return -ENOENT;
	ret = restore_written(vm, rp, &st);
	if (!ret) {
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

void vm_guest_mark(struct vm *vm, struct vcpu *self, uint64_t counter_gpa)
{
	ctl_set_mark_result(&vm->ctl, vm_run_paused_from_vcpu(vm, self, act_mark, &counter_gpa));
}

void vm_guest_reset(struct vm *vm, struct vcpu *self)
{
	struct reset_stats st;
	int ret = vm_run_paused_from_vcpu(vm, self, act_reset, &st);

	if (ret < 0 && ret != -ENOENT)
		pr_warn("VM %llu: reset failed: %d", (unsigned long long)vm->id, ret);
}
