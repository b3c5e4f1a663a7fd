#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/device.h"
#include "core/log.h"
#include "devices/ctl_abi.h"
#include "fork/capture.h"
#include "fork/clone.h"
#include "fork/fork.h"
#include "fork/shells.h"
#include "fork/vmm.h"
#include "state/vm_snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* A paused VM's state and private pages do not change: forks capture them once. */
struct fork_cache {
	struct vm_capture cap;
	uint64_t serial;          /* names this state for the shell pool */
};

/* What every child of one fork shares. */
struct fork_plan {
	struct vm *parent;
	struct vm_snapshot *snap;           /* in the parent's fork_cache, or kept */
	struct mem_ranges *private_pages;   /* likewise */
	const struct vm_capture *kept;      /* the parent runs on: its pages as captured */
	uint64_t serial;
	uint64_t first_id;
	const struct device_config *devices; /* the request's backends for each child */
};

/*
 * A VM of the parent's shape with the parent's base mapped: from a warm shell
 * (perhaps with the parent's state loaded already: fit->state_loaded), or cold.
 */
static int obtain_vm(struct fork_plan *plan, struct vm **out, struct shell_fit *fit)
{
	struct vm *parent = plan->parent;
	struct vm *vm = NULL;
	int ret;

	memset(fit, 0, sizeof(*fit));
	ret = 0;
	if (parent->vmm->shells)
		vm = shell_pool_take(parent->vmm->shells, parent, plan->serial, fit);
	if (!vm) {
		/* Its threads start once its state is loaded (make_child). */
		ret = vm_create_shell(&vm, parent->kvm, parent->mem.size, parent->ncpus,
				      &parent->cpuid_mask, &parent->mem);
		if (!ret && parent->cpuid_table)
			ret = vm_set_cpuid_table(vm, parent->cpuid_table);
		if (ret < 0) {
			vm_destroy(vm);
			return ret;
		}
		fit->base_mapped = true;
	}
	if (fit->base_mapped)
		guest_mem_adopt_base(&vm->mem); /* premapped before the parent froze */
	else
		ret = guest_mem_map_base(&vm->mem, &parent->mem);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

/* The child's own pages: those the capture kept, or the parent's private ones, copied. */
static int put_child_pages(struct vm *child, void *arg)
{
	const struct fork_plan *plan = arg;

	if (plan->kept)
		vm_capture_put_pages(plan->kept, &child->mem);
	else
		guest_mem_copy_ranges(&plan->parent->mem, &child->mem, plan->private_pages);
	return 0;
}

static int make_child(struct fork_plan *plan, unsigned index, struct vm **out, bool *from_shell)
{
	struct clone_pages pages = { put_child_pages, plan };
	struct clone_identity id = {
		.id = plan->first_id + index, .parent_id = plan->parent->id,
		.generation = plan->snap->ctl.generation + 1, .child_index = index + 1,
		.devices = plan->devices,
	};
	struct shell_fit fit;
	struct vm *child;
	int ret = obtain_vm(plan, &child, &fit);

	if (ret < 0)
		return ret;
	*from_shell = fit.base_mapped || fit.state_loaded;
	ret = vm_become_clone(child, plan->snap, fit.state_loaded, &pages, &id,
			      plan->parent->vmm->clone_console);
	if (!ret && !child->threads_started)
		ret = vm_start_paused(child);
	if (ret < 0) {
		vm_destroy(child);
		return ret;
	}
	*out = child;
	return 0;
}

void vm_drop_cached_state(struct vm *vm)
{
	struct fork_cache *c = vm->fork_cache;

	if (!c)
		return;
	vm_capture_free(&c->cap);
	free(c);
	vm->fork_cache = NULL;
}

/* Names a captured state for the shell pool. */
static uint64_t new_serial(struct vmm *vmm)
{
	return __atomic_add_fetch(&vmm->next_serial, 1, __ATOMIC_RELAXED);
}

/*
 * The first fork of a VM whose RAM a warm shell has premapped: rather than
 * remapping the VM's own RAM MAP_PRIVATE (KVM then zaps everything the guest
 * had mapped, in proportion to the pages it touched), its state is loaded
 * into the shell, whose machine it takes (vm_take_machine()). The state
 * captured for that is what its children get; it owns no pages yet.
 * On failure the parent is as it was and shell is gone.
 */
static int move_into_shell(struct vm *parent, struct vm *shell, struct vm_capture *cap)
{
	const struct msr_list *msrs = vmm_msr_list(parent->vmm);
	int ret;

	memset(cap, 0, sizeof(*cap));
	ret = msrs ? vm_snapshot_capture(parent, msrs, &cap->state) : -EINVAL;
	if (!ret)
		ret = vm_snapshot_load(shell, &cap->state);
	if (ret < 0) {
		vm_capture_free(cap);
		vm_destroy(shell);
		return ret;
	}
	vm_take_machine(parent, shell);
	return 0;
}

/* Capture the paused parent: by moving it into shell when there is one (and that works). */
static int capture_or_move(struct vm *parent, struct vm *shell, bool keep_data,
			   struct vm_capture *cap, struct fork_stats *st)
{
	if (shell && move_into_shell(parent, shell, cap) == 0) {
		st->moved = true;
		return 0;
	}
	return vm_capture(parent, keep_data, cap);
}

/*
 * Capture the paused parent once; its memory first (freezing takes its writes
 * into the base). shell: see capture_or_move() (never with a cache: a cache
 * exists only once the RAM is frozen, and shells are taken only before).
 */
static int capture(struct fork_plan *plan, struct fork_stats *st, struct vm *shell)
{
	struct vm *parent = plan->parent;
	struct fork_cache *c = parent->fork_cache;
	int ret;

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c) {
			vm_destroy(shell);
			return -ENOMEM;
		}
		ret = capture_or_move(parent, shell, false, &c->cap, st);
		st->freeze_ns += c->cap.freeze_ns;
		if (ret < 0) {
			free(c);
			return ret;
		}
		c->serial = new_serial(parent->vmm);
		parent->fork_cache = c;
	}
	plan->snap = &c->cap.state;
	plan->private_pages = &c->cap.pages;
	plan->serial = c->serial;
	st->pages_copied = c->cap.pages.pages;
	return 0;
}

static void discard_children(struct vm **children, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vm_destroy(children[i]);
}

static int register_children(struct vmm *vmm, struct vm **children, unsigned n, bool start)
{
	for (unsigned i = 0; i < n; i++) {
		int ret = vmm_add(vmm, children[i]);

		if (ret < 0) {
			discard_children(children + i, n - i);
			return ret;
		}
		/* The registry keeps its reference; the caller gets one of its own. */
		vmm_ref(vmm, children[i]);
	}
	/* Woken last, so running children do not compete with the fork for CPUs. */
	for (unsigned i = 0; start && i < n; i++)
		if (vm_resume(children[i]) < 0)
			pr_warn("clone %llu did not start", (unsigned long long)children[i]->id);
	return 0;
}

static int make_children(struct fork_plan *plan, const struct fork_request *req,
			 struct vm **children, struct fork_stats *st)
{
	uint64_t t = now_ns();
	unsigned made = 0;
	int ret = 0;

	plan->first_id = vmm_alloc_ids(plan->parent->vmm, req->count);
	for (; made < req->count; made++) {
		bool from_shell;

		ret = make_child(plan, made, &children[made], &from_shell);
		if (ret < 0)
			break;
		st->from_shells += from_shell;
	}
	if (ret < 0)
		discard_children(children, made);
	else
		ret = register_children(plan->parent->vmm, children, made, req->start_children);
	st->children_ns = now_ns() - t;
	return ret;
}

/* The parent is paused (every vCPU parked, exits completed); shell: capture_or_move(). */
static int fork_paused(struct fork_plan *plan, const struct fork_request *req,
		       struct vm **children, struct fork_stats *st, struct vm *shell)
{
	uint64_t t = now_ns(), frozen_before = st->freeze_ns;
	int ret = capture(plan, st, shell);

	st->capture_ns = now_ns() - t - (st->freeze_ns - frozen_before);
	return ret < 0 ? ret : make_children(plan, req, children, st);
}

/*
 * A running parent that is to go on (paused by vm_fork) is resumed as soon as
 * its state and its own pages are copied out; its children are made from
 * that copy while it runs, so it is paused for the capture only.
 */
static int fork_then_resume(struct fork_plan *plan, const struct fork_request *req,
			    struct vm **children, struct fork_stats *st, uint64_t t_pause,
			    struct vm *shell)
{
	struct vm *parent = plan->parent;
	struct vm_capture cap;
	uint64_t t = now_ns();
	int ret = capture_or_move(parent, shell, true, &cap, st);

	st->freeze_ns += cap.freeze_ns;
	st->capture_ns = now_ns() - t - cap.freeze_ns;
	vm_resume_locked(parent);
	st->paused_ns = now_ns() - t_pause;
	if (ret < 0)
		return ret;
	plan->snap = &cap.state;
	plan->private_pages = &cap.pages;
	plan->kept = &cap;
	plan->serial = new_serial(parent->vmm);
	st->pages_copied = cap.pages.pages;
	ret = make_children(plan, req, children, st);
	vm_capture_free(&cap);
	return ret;
}

int fork_check_devices(const struct vm *parent, const struct device_config *devices)
{
	unsigned n = 0;

	while (device_table[n])
		n++;
	for (unsigned i = 0; devices && i < DEVICE_MAX; i++) {
		const struct device_type *t = i < n ? device_table[i] : NULL;

		if (!devices->args[i])
			continue;
		if (!t || !t->rebind || !vm_device_arg(parent, i)) {
			pr_err("fork: %s is not a device the parent has on and clones can rebind",
			       t ? t->name : "(beyond the device table)");
			return -EINVAL;
		}
		if (strlen(devices->args[i]) >= DEVICE_ARG_MAX)
			return -ENAMETOOLONG;
	}
	return 0;
}

static int check_request(struct vm *parent, const struct fork_request *req)
{
	int ret;

	if (!parent->vmm) {
		pr_err("fork: the VM is not registered in a VMM");
		return -EINVAL;
	}
	if (req->count < 1 || req->count > FORK_MAX_COUNT) {
		pr_err("fork: %u children: ask for 1 to %d", req->count, FORK_MAX_COUNT);
		return -EINVAL;
	}
	ret = fork_check_devices(parent, req->devices);
	return ret < 0 ? ret : vmm_room_for(parent->vmm, req->count);
}

/*
 * The parent stays paused: it is a template, so shells get its state too and
 * its next forks only wake them. (A running parent's shells keep its base
 * premapped: prepare_memory() left the pool's template as it was.)
 */
static void prepare_shells_for(struct vm *parent)
{
	struct fork_cache *c = parent->fork_cache;

	if (c && parent->vmm->shells)
		shell_pool_set_template(parent->vmm->shells, &parent->mem, &c->cap.state, c->serial);
}

/*
 * What a host's fork does, decided once from the parent and the request:
 *
 *   parent   its RAM   warm shell  resume  | RAM frozen     capture        parent after
 *   running  private   premapped   yes     | by the move    move + copy    runs on once
 *   running  private   none        yes     | before pause   kept copy      captured
 *   running  frozen    -           yes     | already        kept copy      (all three)
 *   running  any       as above    no      | as above       cached         a paused template
 *   paused   any       as above    -       | by capture     cached, reused a paused template
 *
 * A kept copy is freed after the children; a cached capture stays for the
 * next forks of a paused template, whose state the shells then hold too
 * (prepare_shells_for). A guest's own fork (vm_guest_fork) is the paused row,
 * its vCPUs paused from its own vCPU and resumed after the children.
 */
struct fork_decision {
	bool was_running;       /* pause it for the capture */
	bool freeze_first;      /* freeze its RAM while it still runs */
	bool resume_early;      /* resume it once captured; children from a kept copy */
	struct vm *shell;       /* a warm shell premapping its RAM to move into, or NULL */
};

/* A warm shell premapping parent's RAM to move into: only before its RAM is frozen. */
static struct vm *shell_to_move_into(struct vm *parent)
{
	return parent->mem.frozen ? NULL : shell_pool_take_mapped(parent->vmm->shells, parent);
}

static void decide(struct vm *parent, const struct fork_request *req, struct fork_decision *d)
{
	d->was_running = vm_run_state(parent) == VM_STATE_RUNNING;
	d->shell = shell_to_move_into(parent);
	d->freeze_first = d->was_running && !parent->mem.frozen && !d->shell;
	d->resume_early = d->was_running && req->resume_parent;
}

/*
 * Without a shell, freeze a running parent's RAM before pausing it: the remap
 * is most of a first fork's cost, and it is safe while the guest runs (KVM
 * refaults through the new mapping, which shows the same file). The pages it
 * writes meanwhile are its own, found and copied like any others.
 */
static void freeze_while_running(struct vm *parent, struct fork_stats *st)
{
	uint64_t t = now_ns();

	guest_mem_freeze_running(&parent->mem);
	st->freeze_ns = now_ns() - t;
}

/* Plan, freeze, pause, capture, release the parent, make the children (the table above). */
static int fork_locked(struct vm *parent, const struct fork_request *req, struct vm **children,
		       struct fork_stats *st)
{
	struct fork_plan plan = { .parent = parent, .devices = req->devices };
	struct fork_decision d;
	uint64_t t_pause;
	int ret;

	decide(parent, req, &d);
	if (d.freeze_first)
		freeze_while_running(parent, st);
	t_pause = now_ns();
	ret = d.was_running ? vm_pause_locked(parent, NULL) : 0;
	if (ret < 0) {
		vm_destroy(d.shell);
		if (d.was_running)
			vm_resume_locked(parent);
		return ret;
	}
	if (d.resume_early)
		return fork_then_resume(&plan, req, children, st, t_pause, d.shell);
	ret = fork_paused(&plan, req, children, st, d.shell);
	if (ret < 0 && d.was_running)
		vm_resume_locked(parent);
	else if (!ret)
		prepare_shells_for(parent);
	st->paused_ns = now_ns() - t_pause;
	return ret;
}

int vm_fork(struct vm *parent, const struct fork_request *req, struct vm **children,
	    struct fork_stats *stats)
{
	struct fork_stats st = { 0 };
	uint64_t t0 = now_ns();
	enum vm_run_state state;
	int ret = check_request(parent, req);

	if (ret < 0)
		return ret;
	vm_op_lock(parent);
	state = vm_run_state(parent);
	if (state != VM_STATE_RUNNING && state != VM_STATE_PAUSED) {
		pr_err("fork: VM %llu is %s", (unsigned long long)parent->id,
		       vm_run_state_name(state));
		ret = -EINVAL;
	} else {
		ret = fork_locked(parent, req, children, &st);
	}
	vm_op_unlock(parent);
	st.total_ns = now_ns() - t0;
	if (stats)
		*stats = st;
	return ret;
}

/* A guest's fork, run with its other vCPUs paused; it sets FORK_RESULT itself. */
struct guest_fork {
	unsigned count;
	bool answered;
};

static int act_guest_fork(struct vm *vm, void *arg)
{
	struct guest_fork *gf = arg;
	struct fork_request req = { .count = gf->count, .start_children = true };
	struct fork_plan plan = { .parent = vm };
	struct fork_stats st = { 0 };
	struct vm **children = NULL;
	/* Charged once the fork can go ahead: a retried -EBUSY costs the guest nothing. */
	int ret = vmm_charge_guest_forks(vm->vmm, gf->count);

	if (!ret)
		children = calloc(gf->count, sizeof(*children));
	if (!ret && !children)
		ret = -ENOMEM;
	/*
	 * Its first fork may move it into a shell, self included: this thread
	 * then returns from its (completed) MMIO write onto the new vCPU, which
	 * holds the state captured after it, as every child's does.
	 */
	if (!ret)
		ret = fork_paused(&plan, &req, children, &st, shell_to_move_into(vm));
	/* Children see FORK_RESULT 0 (vm_become_clone()); the parent sees the count. */
	ctl_set_fork_result(&vm->ctl, ret < 0 ? ret : (int64_t)gf->count,
			    ret < 0 ? 0 : plan.first_id);
	gf->answered = true;
	for (unsigned i = 0; !ret && i < gf->count; i++)
		vmm_put(vm->vmm, children[i]);
	free(children);
	return ret;
}

void vm_guest_fork(struct vm *vm, struct vcpu *self, uint64_t count)
{
	struct guest_fork gf = { .count = (unsigned)count };
	int ret = -EINVAL;

	if (vm->vmm && count >= 1 && count <= VMFORK_MAX_GUEST_FORK)
		ret = vm_run_paused_from_vcpu(vm, self, act_guest_fork, &gf);
	if (!gf.answered)
		ctl_set_fork_result(&vm->ctl, ret, 0);
}

int fork_capture(struct vm *parent, struct vm_snapshot **snap, struct mem_ranges **private_pages,
		 struct fork_stats *st)
{
	struct fork_plan plan = { .parent = parent };
	uint64_t t = now_ns();
	int ret;

	if (!parent->vmm || vm_run_state(parent) != VM_STATE_PAUSED)
		return -EINVAL;
	ret = capture(&plan, st, NULL);
	st->capture_ns = now_ns() - t - st->freeze_ns;
	if (ret < 0)
		return ret;
	*snap = plan.snap;
	*private_pages = plan.private_pages;
	return 0;
}
