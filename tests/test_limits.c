/*
 * The VMM's limits (fork/vmm.h, struct vmm_limits) against a guest that
 * fork-bombs itself (guest/fork_bomb.c: every VM forks for ever): the VMs stay
 * within the limits, the guest reads the documented error in FORK_RESULT,
 * the host's own forks get a clear error too and the registry answers; then
 * stopping everything (the VMM's SIGTERM, vmm_stop_all()) ends every VM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/layout.h"
#include "fork/vmm.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"

#define BOMB_MEM (16 * MiB)

static unsigned registered(struct vmm *vmm)
{
	uint64_t none;

	return vmm_list(vmm, &none, 0);
}

/* Stop every VM as SIGTERM does; each must stop, with status 128 + SIGTERM. */
static void stop_all_and_check(struct fork_env *env)
{
	unsigned n = registered(&env->vmm);
	uint64_t *ids = calloc(n, sizeof(*ids));

	vmm_stop_all(&env->vmm, 143);
	cr_assert(vmm_wait_all_stopped(&env->vmm, harness_wait_s(30) * 1000),
		  "VMs still ran 30 s after vmm_stop_all()");
	n = vmm_list(&env->vmm, ids, n);
	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vmm_get(&env->vmm, ids[i]);

		if (!vm)
			continue;
		cr_expect_eq(vm_exit_code(vm), 143, "VM %llu: exit status %d",
			     (unsigned long long)ids[i], vm_exit_code(vm));
		vmm_put(&env->vmm, vm);
	}
	free(ids);
}

/* A host fork of the root is refused with err too (the API's 429), and quickly. */
static void host_fork_refused(struct fork_env *env, int err)
{
	struct fork_request req = { .count = 1, .start_children = true, .resume_parent = true };
	struct vm *child = NULL;
	uint64_t t0 = now_ns();
	int ret = vm_fork(env->root, &req, &child, NULL);

	cr_expect_eq(ret, err, "host fork over the limit: %d, wanted %d", ret, err);
	cr_expect_lt(now_ns() - t0, harness_wait_s(5) * 1000000000ULL, "the refusal took %llu ms",
		     (unsigned long long)((now_ns() - t0) / 1000000));
	if (ret == 0)
		vmm_put(&env->vmm, child);
}

Test(limits, fork_bomb_stays_within_max_vms, .timeout = 120)
{
	struct vmm_limits lim = { .max_vms = 10 };
	struct fork_env env;

	fenv_boot_limited(&env, "fork_bomb", "fanout=4", BOMB_MEM, &lim);
	/* The root forks 4, then 4 more (9 VMs); its next 4 would make 13. */
	cr_assert(fenv_wait_reports(env.root, 1, 60), "the root never saw its fork refused");
	cr_expect_eq((int64_t)fenv_report(env.root, 0), -EDQUOT, "FORK_RESULT %lld, wanted -EDQUOT",
		     (long long)fenv_report(env.root, 0));
	cr_expect_leq(registered(&env.vmm), 10, "%u VMs, over max_vms 10", registered(&env.vmm));
	host_fork_refused(&env, -EDQUOT);
	cr_expect_leq(registered(&env.vmm), 10, "%u VMs, over max_vms 10", registered(&env.vmm));
	stop_all_and_check(&env);
	fenv_destroy(&env);
}

Test(limits, guest_forks_in_all, .timeout = 120)
{
	struct vmm_limits lim = { .max_guest_forks = 12 };
	struct fork_env env;
	struct vmm_limits now;

	fenv_boot_limited(&env, "fork_bomb", "fanout=4", BOMB_MEM, &lim);
	cr_assert(fenv_wait_reports(env.root, 1, 60), "the root never saw its fork refused");
	cr_expect_eq((int64_t)fenv_report(env.root, 0), -EDQUOT, "FORK_RESULT %lld, wanted -EDQUOT",
		     (long long)fenv_report(env.root, 0));
	/*
	 * 12 children in fours: exactly three forks go through, by whichever VMs;
	 * a fork is charged before its children are registered, so wait for them.
	 */
	for (unsigned i = 0; i < harness_wait_s(30) * 100 && registered(&env.vmm) < 13; i++)
		usleep(10000);
	stop_all_and_check(&env);
	cr_expect_eq(registered(&env.vmm), 13, "%u VMs, wanted 1 + 12", registered(&env.vmm));
	now = vmm_get_limits(&env.vmm);
	cr_expect_eq(now.max_guest_forks, 12);
	cr_expect_eq(vmm_get_usage(&env.vmm).guest_forks, 12, "guests were granted %llu children",
		     (unsigned long long)vmm_get_usage(&env.vmm).guest_forks);
	fenv_destroy(&env);
}

Test(limits, guest_fork_rate, .timeout = 120)
{
	struct vmm_limits lim = { .guest_forks_per_s = 8 };
	struct fork_env env;
	uint64_t t0 = now_ns(), secs;

	fenv_boot_limited(&env, "fork_bomb", "fanout=4", BOMB_MEM, &lim);
	cr_assert(fenv_wait_reports(env.root, 1, 60), "the root never saw its fork refused");
	cr_expect_eq((int64_t)fenv_report(env.root, 0), -EAGAIN, "FORK_RESULT %lld, wanted -EAGAIN",
		     (long long)fenv_report(env.root, 0));
	/* At most 8 children in each second begun since the boot. */
	secs = (now_ns() - t0) / 1000000000ULL + 1;
	cr_expect_leq(registered(&env.vmm), 1 + 8 * secs, "%u VMs in %llu s at 8 forks/s",
		      registered(&env.vmm), (unsigned long long)secs);
	stop_all_and_check(&env);
	fenv_destroy(&env);
}

/* More VMs than one batch of vmm_stop_all() (256), paused clones of an idle guest. */
Test(limits, stop_all_stops_hundreds, .timeout = 300)
{
	struct fork_request req = { .count = 100, .start_children = false };
	struct vm *children[100];
	struct rlimit fds;
	struct fork_env env;

	/* Each VM holds a few fds: 300 need more than the usual 1024. */
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &fds), 0);
	fds.rlim_cur = fds.rlim_max;
	setrlimit(RLIMIT_NOFILE, &fds);
	fenv_boot(&env, "idle", NULL, 1, BOMB_MEM);
	cr_assert_eq(vm_pause(env.root), 0);
	for (unsigned round = 0; round < 3; round++) {
		cr_assert_eq(vm_fork(env.root, &req, children, NULL), 0, "round %u", round);
		for (unsigned i = 0; i < 100; i++)
			vmm_put(&env.vmm, children[i]);
	}
	cr_assert_eq(registered(&env.vmm), 301);
	stop_all_and_check(&env);
	/* Stopping, the VMM takes no new VM. */
	cr_expect_eq(vm_fork(env.root, &req, children, NULL), -ESHUTDOWN);
	fenv_destroy(&env);
}
