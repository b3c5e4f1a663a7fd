/* Reset-in-place: guest-driven fuzz loops and host-driven resets. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fork/reset.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"

static struct guest_result res;
static struct fork_env env;

/* harness_run_guest has no vmm: the mark needs one (for the MSR list). */
Test(reset, mark_without_vmm_fails_cleanly)
{
	struct guest_opts o = { .cmdline = "pages=1 iters=5" };

	SKIP_WITHOUT_KVM();
	harness_run_guest("fuzz_loop", &o, &res);
	cr_assert_eq(res.status, 2, "the guest sees its mark fail");
	cr_assert_eq((int64_t)res.reports[0], -EINVAL);
}

static void fuzz_loop_in_vmm(unsigned pages, unsigned iters)
{
	char cmdline[64];

	snprintf(cmdline, sizeof(cmdline), "pages=%u iters=%u", pages, iters);
	fenv_boot(&env, "fuzz_loop", cmdline, 1, 64 * MiB);
	cr_assert_eq(fenv_wait_exit(env.root, 120), 0, "pages=%u: every iteration found its "
		     "pages as at the mark", pages);
	cr_assert_eq(fenv_report(env.root, 0), 0, "SNAPSHOT_RESULT");
	cr_assert_eq(fenv_report(env.root, 1), iters, "resets");
	fenv_destroy(&env);
}

Test(reset, guest_fuzz_loop_one_page, .timeout = 120)
{
	SKIP_WITHOUT_KVM();
	fuzz_loop_in_vmm(1, 500);
}

Test(reset, guest_fuzz_loop_many_pages, .timeout = 120)
{
	SKIP_WITHOUT_KVM();
	fuzz_loop_in_vmm(16, 200);
	fuzz_loop_in_vmm(256, 20);
}

Test(reset, host_reset_restores_pages_and_registers, .timeout = 60)
{
	static const char junk[] = "written after the mark";
	struct reset_stats st;
	uint8_t before[64];
	struct vm *vm;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	vm = env.root;
	cr_assert(fenv_wait_reports(vm, 1, 10));
	cr_assert_eq(vm_reset(vm, &st), -ENOENT, "no reset point yet");
	cr_assert_eq(vm_mark_reset_point(vm), 0);
	memcpy(before, gpa_ptr(&vm->mem, 0x3000000, sizeof(before)), sizeof(before));
	cr_assert_eq(vm_pause(vm), 0);
	for (unsigned p = 0; p < 8; p++)
		cr_assert_eq(guest_write(&vm->mem, 0x3000000 + p * PAGE_SIZE, junk, sizeof(junk)), 0);
	cr_assert_eq(vm_reset(vm, &st), 0);
	cr_assert_geq(st.pages_reset, 8, "the 8 pages written (and what the guest wrote)");
	cr_assert_eq(memcmp(gpa_ptr(&vm->mem, 0x3000000, sizeof(before)), before, sizeof(before)),
		     0, "the page reads as at the mark");
	cr_assert_eq(vm_run_state(vm), VM_STATE_PAUSED, "a paused VM stays paused");
	cr_assert_eq(vm_resume(vm), 0);
	cr_assert_eq(vm_reset(vm, &st), 0, "and a running one can be reset too");
	cr_assert_eq(vm_run_state(vm), VM_STATE_RUNNING);
	cr_assert_eq(vm->ctl.resets, 2);
	fenv_destroy(&env);
}

/*
 * A page the VM owned at the mark (written after its base froze) comes back
 * from the mark's copy, a page it did not from the base: in one reset, with
 * the two kinds interleaved, and again in a second reset.
 */
Test(reset, owned_and_base_pages_come_back_as_at_the_mark, .timeout = 60)
{
	static const char owned[] = "owned at the mark", junk[] = "written after the mark";
	enum { PAGES = 12 };
	const uint64_t at = 0x3000000;
	uint8_t mark_image[PAGES][32];
	struct reset_stats st;
	struct vm *child;
	struct vm *vm;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	vm = env.root;
	cr_assert(fenv_wait_reports(vm, 1, 10));
	fenv_fork(vm, 1, &child, NULL); /* freezes the base */
	cr_assert_eq(vm_pause(vm), 0);
	for (unsigned p = 0; p < PAGES; p += 3) /* pages 0, 3, 6, 9: the VM's own */
		cr_assert_eq(guest_write(&vm->mem, at + p * PAGE_SIZE, owned, sizeof(owned)), 0);
	cr_assert_eq(vm_mark_reset_point(vm), 0);
	for (unsigned p = 0; p < PAGES; p++)
		memcpy(mark_image[p], gpa_ptr(&vm->mem, at + p * PAGE_SIZE, 32), 32);
	cr_assert_eq(memcmp(mark_image[3], owned, sizeof(owned)), 0);
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned p = round; p < PAGES; p++)
			cr_assert_eq(guest_write(&vm->mem, at + p * PAGE_SIZE, junk, sizeof(junk)), 0);
		cr_assert_eq(vm_reset(vm, &st), 0);
		cr_assert_geq(st.pages_reset, PAGES - round);
		for (unsigned p = 0; p < PAGES; p++)
			cr_assert_eq(memcmp(gpa_ptr(&vm->mem, at + p * PAGE_SIZE, 32), mark_image[p],
					    32), 0, "round %u: page %u reads as at the mark", round, p);
	}
	vmm_put(&env.vmm, child);
	fenv_destroy(&env);
}
