/*
 * The fork engine's proofs with guests built for them (guest/fork_*.c):
 * state at many moments, memory isolation, guest-requested trees, SMP.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest/rt/mix.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"

#define FS_RESULT 0x1159a5aa47cc3efbULL /* guest/fork_state.c's reference [0] */
#define MAX_VMS 64

static struct fork_env env;

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

/* Every registered VM, referenced (vmm_put each). */
static unsigned all_vms(struct vm **vms)
{
	uint64_t ids[MAX_VMS];
	unsigned n = vmm_list(&env.vmm, ids, MAX_VMS), got = 0;

	cr_assert_leq(n, MAX_VMS);
	for (unsigned i = 0; i < n; i++) {
		vms[got] = vmm_get(&env.vmm, ids[i]);
		got += vms[got] != NULL;
	}
	return got;
}

static void wait_all(unsigned timeout_s)
{
	if (vmm_wait_all_stopped(&env.vmm, harness_wait_s(timeout_s) * 1000))
		return;
	fenv_note_running(&env);
	sleep_us(500000); /* a second look tells a loop from a halt */
	fenv_note_running(&env);
	cr_assert_fail("VMs still running after %u s", harness_wait_s(timeout_s));
}

static uint64_t reference_result(const char *guest, const char *cmdline, unsigned ncpus)
{
	struct guest_opts o = { .cmdline = cmdline, .ncpus = ncpus, .timeout_s = 60 };
	static struct guest_result res;

	harness_run_guest(guest, &o, &res);
	cr_assert_eq(res.reason, VM_STOP_GUEST_EXIT);
	cr_assert_eq(res.status, 0, "unforked %s: exit %d%s\n%s", guest, res.status,
		     res.status == 0x76 ? " (#UD: the guest uses AVX where CPUID offers it; "
					  "see guests::xcr0_survives_exits)" : "",
		     res.console);
	if (ncpus == 1 && !res.reports[8])
		harness_note("%s: this CPU offers no AVX2: YMM state is not tested", guest);
	return res.reports[ncpus > 1 ? 6 : 0];
}

/*
 * Fork the running root at random moments, twice each time, then check every
 * VM. With shells, the first fork moves the root into one of them.
 */
static void fork_state_at_random_moments(const char *cmdline, unsigned forks, bool shells)
{
	struct vm *vms[MAX_VMS];
	unsigned n, landed = 0;

	SKIP_WITHOUT_KVM();
	cr_assert_eq(reference_result("fork_state", cmdline, 1), FS_RESULT);
	srand(harness_seed());
	fenv_boot_with_shells(&env, "fork_state", cmdline, 1, 64 * MiB, shells ? 3 : 0);
	for (unsigned i = 0; i < forks && !vm_stopping(env.root); i++) {
		struct vm *kids[2];
		struct fork_request req = { .count = 2, .start_children = true, .resume_parent = true };
		struct fork_stats st;

		sleep_us(2000 + (unsigned)rand() % 25000);
		if (vm_fork(env.root, &req, kids, &st) == 0) {
			cr_expect_eq(st.moved, shells && !landed, "fork %u: moved %d", i, st.moved);
			landed++;
			vmm_put(&env.vmm, kids[0]);
			vmm_put(&env.vmm, kids[1]);
		}
	}
	wait_all(120);
	n = all_vms(vms);
	cr_assert_geq(n, 3, "at least one fork landed before the guest finished");
	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vms[i];

		cr_expect_eq(vm_exit_code(vm), 0, "VM %llu exit %#x", (unsigned long long)vm->id,
			     vm_exit_code(vm));
		cr_expect_eq(fenv_report(vm, 0), FS_RESULT, "VM %llu result", (unsigned long long)vm->id);
		cr_expect_eq(fenv_report(vm, 4), 1, "VM %llu: TSC went backwards", (unsigned long long)vm->id);
		cr_expect_gt(fenv_report(vm, 5), 0, "VM %llu: the timer fired", (unsigned long long)vm->id);
		cr_expect_eq(fenv_report(vm, 6), vm->id, "CLONE_ID");
		cr_expect_eq(fenv_report(vm, 7), vm->id ? 1 : 0, "GENERATION");
		vmm_put(&env.vmm, vm);
	}
	cr_log_info("%u VMs ended with the unforked result", n);
	vm_wait_retired(env.root);
	cr_assert(fcntl(env.root->mem.fd, F_GET_SEALS) & F_SEAL_WRITE, "the base is sealed");
	fenv_destroy(&env);
}

Test(fork_proof, state_survives_forks_at_any_moment, .timeout = 240)
{
	fork_state_at_random_moments(NULL, 8, false);
}

Test(fork_proof, state_survives_a_move_into_a_shell, .timeout = 240)
{
	fork_state_at_random_moments(NULL, 8, true);
}

Test(fork_proof, state_survives_forks_inside_interrupt_handlers, .timeout = 240)
{
	fork_state_at_random_moments("slow_irq=1 period_us=300", 8, true);
}

/* One fork of a running 2-vCPU guest (moved into a shell, with shells). */
static void smp_fork(bool shells)
{
	struct vm *kids[2], *vms[MAX_VMS];
	struct fork_request req = { .count = 2, .start_children = true, .resume_parent = true };
	struct fork_stats st;
	uint64_t cpu1;
	unsigned n;

	SKIP_WITHOUT_KVM();
	reference_result("fork_smp", NULL, 2);
	{
		struct guest_opts o = { .ncpus = 2, .timeout_s = 60 };
		static struct guest_result res;

		harness_run_guest("fork_smp", &o, &res);
		cr_assert_eq(res.status, 0);
		cpu1 = res.reports[9];
	}
	fenv_boot_with_shells(&env, "fork_smp", NULL, 2, 64 * MiB, shells ? 3 : 0);
	cr_assert(fenv_wait_console(&env, "fork_smp: cpu 0 computing", 60), "CPU 0 never computed");
	cr_assert(fenv_wait_console(&env, "fork_smp: cpu 1 computing", 60), "CPU 1 never computed");
	cr_assert_eq(vm_fork(env.root, &req, kids, &st), 0);
	cr_assert_eq(st.moved, shells);
	vmm_put(&env.vmm, kids[0]);
	vmm_put(&env.vmm, kids[1]);
	wait_all(120);
	n = all_vms(vms);
	cr_assert_eq(n, 3);
	for (unsigned i = 0; i < n; i++) {
		cr_expect_eq(vm_exit_code(vms[i]), 0);
		cr_expect_eq(fenv_report(vms[i], 6), FS_RESULT, "CPU 0 result");
		cr_expect_eq(fenv_report(vms[i], 9), cpu1, "CPU 1 result");
		vmm_put(&env.vmm, vms[i]);
	}
	fenv_destroy(&env);
}

Test(fork_proof, smp_state_survives_forks, .timeout = 240)
{
	smp_fork(false);
}

Test(fork_proof, smp_state_survives_a_move_into_a_shell, .timeout = 240)
{
	smp_fork(true);
}

/* guest/fork_isolation.c's layout and patterns */
#define FI_MAILBOX 0x00fff000ULL
#define FI_REGION 0x01000000ULL
#define FI_REGION_SIZE (8 * MiB)
#define FI_BASE_KEY 0xba5eba5eba5eba5eULL

static uint64_t words_not_base(const uint8_t *region)
{
	uint64_t bad = 0;

	for (uint64_t off = 0; off < FI_REGION_SIZE; off += 8) {
		uint64_t w;

		memcpy(&w, region + off, 8);
		bad += w != mix64((FI_REGION + off) ^ FI_BASE_KEY);
	}
	return bad;
}

static void let_go(struct vm *vm)
{
	uint64_t go = 1;

	cr_assert_eq(guest_write(&vm->mem, FI_MAILBOX, &go, sizeof(go)), 0);
}

Test(fork_proof, memory_is_isolated, .timeout = 120)
{
	struct vm *kids[2];
	uint8_t *base_copy = malloc(FI_REGION_SIZE);

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "fork_isolation", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 20), "the guest never got ready");
	fenv_fork(env.root, 2, kids, NULL);
	/* The parent and child 1 write their own patterns over the same pages; child 2 waits. */
	let_go(env.root);
	let_go(kids[0]);
	cr_assert_eq(fenv_wait_exit(env.root, 30), 0);
	cr_assert_eq(fenv_wait_exit(kids[0], 30), 0);
	cr_assert_eq(fenv_report(env.root, 6), 0, "parent saw only its own pattern");
	cr_assert_eq(fenv_report(kids[0], 5), 0, "child 1 saw only its own pattern");
	cr_assert_neq(fenv_report(env.root, 7), fenv_report(kids[0], 6), "different patterns");
	cr_assert_eq(words_not_base(gpa_ptr(&kids[1]->mem, FI_REGION, FI_REGION_SIZE)), 0,
		     "the sibling still waiting sees the base pattern");
	cr_assert_eq(pread(env.root->mem.fd, base_copy, FI_REGION_SIZE, (off_t)FI_REGION),
		     (ssize_t)FI_REGION_SIZE);
	cr_assert_eq(words_not_base(base_copy), 0, "the frozen base is unchanged");
	let_go(kids[1]);
	cr_assert_eq(fenv_wait_exit(kids[1], 30), 0);
	vmm_put(&env.vmm, kids[0]);
	vmm_put(&env.vmm, kids[1]);
	free(base_copy);
	fenv_destroy(&env);
}

/* A parent that wrote after its first fork: the next child gets its writes, copied page by page. */
Test(fork_proof, writes_since_last_fork_reach_new_child, .timeout = 60)
{
	struct fork_request req = { .count = 1, .resume_parent = false };
	static const char msg[] = "written by the parent after its first fork";
	struct vm *first, *second;
	struct fork_stats st;
	uint64_t owned;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "fork_isolation", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 20));
	cr_assert_eq(vm_fork(env.root, &req, &first, &st), 0);
	/* The base froze just before the pause: what the guest wrote in between is its own. */
	owned = st.pages_copied;
	cr_assert_lt(owned, 64, "a waiting guest writes a few pages at most (%llu)",
		     (unsigned long long)owned);
	for (unsigned p = 0; p < 16; p++)
		cr_assert_eq(guest_write(&env.root->mem, FI_REGION + p * 2 * PAGE_SIZE, msg, sizeof(msg)), 0);
	vm_drop_cached_state(env.root); /* the paused parent changed under the cache */
	cr_assert_eq(vm_fork(env.root, &req, &second, &st), 0);
	cr_assert_eq(st.pages_copied, owned + 16, "exactly the 16 pages written, and those it had");
	cr_assert_str_eq((char *)gpa_ptr(&second->mem, FI_REGION + 30 * PAGE_SIZE, sizeof(msg)), msg);
	cr_assert_eq(words_not_base(gpa_ptr(&first->mem, FI_REGION, FI_REGION_SIZE)), 0,
		     "the first child does not see them");
	vmm_put(&env.vmm, first);
	vmm_put(&env.vmm, second);
	fenv_destroy(&env);
}

/* A guest-driven fork tree; with shells, the root's first fork moves it into one. */
static void fork_tree(unsigned depth, unsigned fanout, unsigned expect_vms, unsigned shells)
{
	char cmdline[64];
	struct vm *vms[MAX_VMS];
	uint64_t paths[MAX_VMS];
	unsigned n, leaves = 0;
	uint8_t *ram_at_boot;

	SKIP_WITHOUT_KVM();
	snprintf(cmdline, sizeof(cmdline), "depth=%u fanout=%u", depth, fanout);
	fenv_boot_with_shells(&env, "fork_tree", cmdline, 1, 32 * MiB, shells);
	ram_at_boot = env.root->mem.host;
	for (unsigned i = 0; i < 200 && vmm_list(&env.vmm, NULL, 0) < expect_vms; i++)
		sleep_us(50000);
	wait_all(120);
	n = all_vms(vms);
	cr_assert_eq(n, expect_vms, "VMs in the tree: %u", n);
	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vms[i];
		bool leaf = fenv_report(vm, 5) == depth;
		int status = vm_exit_code(vm);

		cr_expect_eq(status, leaf ? (int)(0x50 | fenv_report(vm, 2)) : 0, "VM %llu exit %#x",
			     (unsigned long long)vm->id, status);
		if (vm->id) {
			struct vm *parent = vmm_get(&env.vmm, vm->parent_id);

			cr_assert_not_null(parent);
			cr_expect_eq(vm->id, fenv_report(parent, 4) + fenv_report(vm, 2) - 1,
				     "child id = parent's FORK_FIRST_ID + index - 1");
			cr_expect_eq(fenv_report(vm, 0), fenv_report(parent, 0) + 1, "generation");
			vmm_put(&env.vmm, parent);
		}
		if (leaf) {
			for (unsigned j = 0; j < leaves; j++)
				cr_expect_neq(paths[j], fenv_report(vm, 6), "every path once");
			paths[leaves++] = fenv_report(vm, 6);
		}
	}
	for (unsigned i = 0; i < n; i++)
		vmm_put(&env.vmm, vms[i]);
	cr_assert_eq(leaves, expect_vms - (expect_vms - 1) / fanout, "leaves");
	/* A move gives the root the shell's RAM mapping; freezing in place keeps its own. */
	cr_assert_eq(env.root->mem.host != ram_at_boot, shells > 0, "the root moved: %d",
		     env.root->mem.host != ram_at_boot);
	fenv_destroy(&env);
}

Test(fork_proof, guest_fork_tree_depth_four, .timeout = 240)
{
	fork_tree(4, 2, 31, 0);
}

/* 15: the guest's path keeps a CHILD_INDEX in 4 bits; the host-driven fan-out test does 16. */
Test(fork_proof, guest_fork_fan_out_fifteen, .timeout = 240)
{
	fork_tree(1, 15, 16, 0);
}

Test(fork_proof, guest_fork_tree_after_a_move_into_a_shell, .timeout = 240)
{
	fork_tree(3, 2, 15, 4);
}
