/*
 * fork_tree: guest-requested forks with fork() semantics (devices/ctl_abi.h),
 * a tree of them. Starting at level 0, a VM at level < depth writes fanout to
 * FORK. The parent then sees FORK_RESULT = fanout and FORK_FIRST_ID, with its
 * CLONE_ID, GENERATION and CHILD_INDEX unchanged, and stops there; child i
 * sees FORK_RESULT = 0, CHILD_INDEX = i, a new nonzero CLONE_ID and the
 * parent's GENERATION + 1, and goes on at level + 1. A VM at level depth is a
 * leaf: it forks no more and runs a small computation of its own path from the
 * root. In all, 1 + fanout + ... + fanout^depth VMs; each checks what it saw.
 * The host checks what no VM can: child i's CLONE_ID = its parent's
 * FORK_FIRST_ID + i - 1, and that every path appears once.
 *
 * cmdline: "depth=D" (0..FT_MAX_DEPTH, default 2), "fanout=F" (1..FT_MAX_FANOUT,
 *          default 2), with F^D at most FT_MAX_LEAVES. depth=0 forks nothing:
 *          the booted VM is the only leaf (the unforked reference run).
 * LOG:    one line per VM: "fork_tree: leaf|parent|vm level L path 0x... clone C
 *         gen G index I ...: ok" or what was wrong
 * REPORT: [0] GENERATION, [1] CLONE_ID, [2] CHILD_INDEX, [3] FORK_RESULT
 *         (parents: of their fork, fanout; leaves: 0; a VM whose FORK failed:
 *         the negative errno, two's complement), [4] FORK_FIRST_ID (parents;
 *         0 in leaves), [5] level, [6] path: the CHILD_INDEX at each level from
 *         the root, 4 bits per level, the root's fork in the highest used bits
 *         (0 for the booted VM), [7] leaf result: h = path, then FT_LEAF_ROUNDS
 *         times h = mix64(h + round) for round = 0, 1, ... (splitmix64's
 *         finaliser, as in fork_isolation.c); 0 in parents, [8] FORK requests
 *         answered -EBUSY (-16: a host operation on this VM, such as the fork
 *         that made it, still in progress) and retried (up to FT_BUSY_RETRIES
 *         each time), by this VM and its ancestors (a child starts with its
 *         parent's memory, the count included)
 * exit:   parents 0; leaves 0x50 | CHILD_INDEX (0x50 for depth=0); 1 when a
 *         fork() semantics check failed; 2 when FORK failed (negative
 *         FORK_RESULT, in [3]); 4 on a bad cmdline
 */
#include "mix.h"
#include "rt.h"

#define FT_MAX_DEPTH   8
#define FT_MAX_FANOUT  15 /* a CHILD_INDEX fits the 4 bits of a path level */
#define FT_MAX_LEAVES  256
#define FT_LEAF_ROUNDS 1000000
#define FT_EBUSY       16 /* Linux's EBUSY: the VMM's errno values are Linux's */
#define FT_BUSY_RETRIES 1000
#define FT_BUSY_WAIT_CYCLES 1000000 /* a few hundred microseconds between retries */

#define FT_LEAF_EXIT   0x50 /* not 0x40: vm-fork itself exits 64 on a bad command line */
#define FT_BAD_CHECK   1
#define FT_FORK_FAILED 2
#define FT_BAD_ARGS    4

struct ft_vm {
	uint64_t level, path, fork_result, first_id, leaf;
	uint64_t busy; /* FORK requests answered -EBUSY and retried */
	bool parent;
	unsigned bad; /* failed checks, one bit each: what the log line shows */
};

static uint64_t ctl(unsigned offset)
{
	return rt_ctl_read(offset);
}

/*
 * Write FORK; while the VMM answers -EBUSY (a host operation on this VM, such
 * as the fork that made it, is still in progress), wait a little and retry.
 */
static int64_t fork_request(struct ft_vm *vm, uint64_t fanout)
{
	int64_t res;

	for (;;) {
		rt_ctl_write(VMFORK_CTL_FORK, fanout);
		res = (int64_t)ctl(VMFORK_CTL_FORK_RESULT);
		if (res != -FT_EBUSY || vm->busy >= FT_BUSY_RETRIES)
			return res;
		vm->busy++;
		for (uint64_t t0 = rt_rdtsc(); rt_rdtsc() - t0 < FT_BUSY_WAIT_CYCLES;)
			rt_pause();
	}
}

/* Check the registers after a fork of fanout children; false when it failed. */
static bool after_fork(struct ft_vm *vm, int64_t res, uint64_t fanout, uint64_t id0,
		       uint64_t gen0, uint64_t idx0)
{
	uint64_t idx = ctl(VMFORK_CTL_CHILD_INDEX), id = rt_clone_id(), gen = rt_generation();

	vm->fork_result = (uint64_t)res;
	if (res < 0)
		return false;
	if (res > 0) {
		vm->parent = true;
		vm->first_id = ctl(VMFORK_CTL_FORK_FIRST_ID);
		vm->bad |= ((uint64_t)res != fanout) << 0 | (vm->first_id == 0) << 1 |
			   (id != id0) << 2 | (gen != gen0) << 3 | (idx != idx0) << 4;
		return true;
	}
	vm->bad |= (idx < 1 || idx > fanout) << 5 | (id == id0 || id == 0) << 6 |
		   (gen != gen0 + 1) << 7;
	vm->level++;
	vm->path = vm->path << 4 | (idx & 0xf);
	return true;
}

/* Fork down the tree; returns false when a FORK failed. */
static bool grow(struct ft_vm *vm, uint64_t depth, uint64_t fanout)
{
	while (vm->level < depth && !vm->parent) {
		uint64_t id0 = rt_clone_id(), gen0 = rt_generation();
		uint64_t idx0 = ctl(VMFORK_CTL_CHILD_INDEX);

		if (!after_fork(vm, fork_request(vm, fanout), fanout, id0, gen0, idx0))
			return false;
	}
	return true;
}

static uint64_t leaf_work(uint64_t path)
{
	uint64_t h = path;

	for (uint64_t i = 0; i < FT_LEAF_ROUNDS; i++)
		h = mix64(h + i);
	return h;
}

static bool args_ok(uint64_t depth, uint64_t fanout)
{
	uint64_t leaves = 1;

	if (depth > FT_MAX_DEPTH || fanout < 1 || fanout > FT_MAX_FANOUT)
		return false;
	for (uint64_t i = 0; i < depth; i++)
		leaves *= fanout;
	return leaves <= FT_MAX_LEAVES;
}

static void report_vm(const struct ft_vm *vm, bool forked, uint64_t idx, int status)
{
	const char *role = !forked ? "vm" : vm->parent ? "parent" : "leaf";

	rt_printf("fork_tree: %s level %lu path 0x%lx clone %lu gen %lu index %lu fork_result %ld "
		  "first %lu leaf 0x%lx busy %lu: %s (checks 0x%x, exit 0x%x)\n", role, vm->level,
		  vm->path, rt_clone_id(), rt_generation(), idx, (int64_t)vm->fork_result,
		  vm->first_id, vm->leaf, vm->busy, forked && !vm->bad ? "ok" : "FAILED", vm->bad,
		  status);
	rt_report(rt_generation());
	rt_report(rt_clone_id());
	rt_report(idx);
	rt_report(vm->fork_result);
	rt_report(vm->first_id);
	rt_report(vm->level);
	rt_report(vm->path);
	rt_report(vm->leaf);
	rt_report(vm->busy);
}

int main(void)
{
	uint64_t depth = rt_arg_u64("depth", 2), fanout = rt_arg_u64("fanout", 2), idx;
	struct ft_vm vm = { 0 };
	bool forked;
	int status;

	if (!args_ok(depth, fanout)) {
		rt_printf("fork_tree: bad depth %lu or fanout %lu\n", depth, fanout);
		return FT_BAD_ARGS;
	}
	forked = grow(&vm, depth, fanout);
	if (forked && !vm.parent)
		vm.leaf = leaf_work(vm.path);
	idx = ctl(VMFORK_CTL_CHILD_INDEX);
	status = !forked ? FT_FORK_FAILED : vm.bad ? FT_BAD_CHECK :
		 vm.parent ? 0 : FT_LEAF_EXIT | (int)(idx & 0xf);
	report_vm(&vm, forked, idx, status);
	return status;
}
