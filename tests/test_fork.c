/* The fork engine: semantics, identity, isolation, depth and breadth, leaks, bad requests. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core/process_stats.h"
#include "devices/ctl_abi.h"
#include "fork/shells.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"
#include "vmm/vcpu.h"
#include <pthread.h>
#include <sched.h>

static struct fork_env env;

Test(fork, child_learns_it_is_a_clone, .timeout = 60)
{
	struct vm *child;
	struct fork_stats st;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=20000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10), "the guest never got ready");
	fenv_fork(env.root, 1, &child, &st);
	cr_assert_eq(child->id, 1);
	cr_assert_eq(child->parent_id, 0);
	cr_assert_eq(fenv_wait_exit(child, 20), 0x40 | 1, "child exit status");
	/* A clone's report list starts empty: [0] was the parent's, before the fork. */
	cr_assert_eq(fenv_report(child, 0), 1, "CLONE_ID seen by the child");
	cr_assert_eq(fenv_report(child, 1), 1, "GENERATION seen by the child");
	cr_assert_eq(fenv_report(child, 2), 1, "CHILD_INDEX seen by the child");
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the parent goes on");
	cr_log_info("fork: paused %llu us, total %llu us", (unsigned long long)st.paused_ns / 1000,
		    (unsigned long long)st.total_ns / 1000);
	vmm_put(&env.vmm, child);
	fenv_destroy(&env);
}

static struct fork_request paused_children(unsigned count)
{
	return (struct fork_request){ .count = count, .resume_parent = true };
}

Test(fork, fan_out_of_sixteen, .timeout = 120)
{
	struct vm *kids[16];
	struct fork_stats st;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	fenv_fork(env.root, 16, kids, &st);
	for (unsigned i = 0; i < 16; i++) {
		cr_assert_eq(kids[i]->id, 1 + i, "consecutive ids");
		cr_assert_eq(fenv_wait_exit(kids[i], 30), 0x40 | (int)(1 + i));
		cr_assert_eq(fenv_report(kids[i], 2), 1 + i, "CHILD_INDEX");
		vmm_put(&env.vmm, kids[i]);
	}
	cr_log_info("16 children: total %llu us", (unsigned long long)st.total_ns / 1000);
	fenv_destroy(&env);
}

Test(fork, depth_of_four, .timeout = 120)
{
	struct fork_request req = paused_children(1);
	struct vm *chain[5];

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	chain[0] = env.root;
	for (unsigned d = 1; d <= 4; d++)
		cr_assert_eq(vm_fork(chain[d - 1], &req, &chain[d], NULL), 0, "fork at depth %u", d);
	for (unsigned d = 1; d <= 4; d++) {
		cr_assert_eq(vm_run_state(chain[d]), VM_STATE_PAUSED);
		cr_assert_eq(chain[d]->parent_id, chain[d - 1]->id);
		cr_assert_eq(vm_resume(chain[d]), 0);
	}
	for (unsigned d = 1; d <= 4; d++) {
		cr_assert_eq(fenv_wait_exit(chain[d], 30), 0x40 | (int)chain[d]->id);
		cr_assert_eq(fenv_report(chain[d], 1), d, "GENERATION at depth %u", d);
		vmm_put(&env.vmm, chain[d]);
	}
	fenv_destroy(&env);
}

Test(fork, two_vcpu_guest, .timeout = 120)
{
	struct vm *kid;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 2, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	fenv_fork(env.root, 1, &kid, NULL);
	cr_assert_eq(kid->ncpus, 2);
	cr_assert_eq(fenv_wait_exit(kid, 30), 0x41);
	vmm_put(&env.vmm, kid);
	fenv_destroy(&env);
}

Test(fork, bad_requests_leave_parent_running, .timeout = 60)
{
	struct fork_request zero = { .count = 0 }, huge = { .count = 1000000 };
	struct vm *kid;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	cr_assert_eq(vm_fork(env.root, &zero, &kid, NULL), -EINVAL);
	cr_assert_eq(vm_fork(env.root, &huge, &kid, NULL), -EINVAL);
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING);
	vm_request_stop(env.root, VM_STOP_REQUESTED, 0);
	vm_wait(env.root);
	{
		struct fork_request one = { .count = 1 };

		cr_assert_eq(vm_fork(env.root, &one, &kid, NULL), -EINVAL, "a stopped VM");
	}
	fenv_destroy(&env);
}

/* Out of file descriptors half-way through a fork of 8: nothing is left behind. */
Test(fork, resource_limit_fails_cleanly, .timeout = 60)
{
	struct fork_request req = { .count = 8, .start_children = true, .resume_parent = true };
	struct rlimit lim;
	struct vm *kids[8];
	unsigned before;
	int ret;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	before = vmm_list(&env.vmm, NULL, 0);
	getrlimit(RLIMIT_NOFILE, &lim);
	lim.rlim_cur = (rlim_t)process_open_fds() + 12;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
	ret = vm_fork(env.root, &req, kids, NULL);
	cr_assert_lt(ret, 0, "the fork must fail");
	cr_assert_eq(vmm_list(&env.vmm, NULL, 0), before, "no half-made children registered");
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the parent goes on");
	fenv_destroy(&env);
}

Test(fork, thousand_forks_leak_nothing, .timeout = 300)
{
	struct fork_request req = paused_children(1);
	unsigned fds_before = 0;
	long rss_before = 0;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=600000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	cr_assert_eq(vm_pause(env.root), 0);
	for (unsigned i = 0; i < 1050; i++) {
		struct vm *kid;

		if (i == 50) { /* after warm-up: allocator arenas and caches settle */
			fds_before = process_open_fds();
			rss_before = process_rss_kib();
		}
		cr_assert_eq(vm_fork(env.root, &req, &kid, NULL), 0, "fork %u", i);
		cr_assert_eq(vmm_remove(&env.vmm, kid->id), 0);
		vmm_put(&env.vmm, kid);
	}
	cr_assert_eq(process_open_fds(), fds_before, "open fds after 1000 forks");
	cr_assert_leq(process_rss_kib(), rss_before + 2048, "RSS grew from %ld KiB to %ld KiB",
		      rss_before, process_rss_kib());
	cr_log_info("RSS %ld -> %ld KiB, fds %u", rss_before, process_rss_kib(), fds_before);
	fenv_destroy(&env);
}

/* Address space for one more 64 MiB child is not there: the fork fails cleanly. */
Test(fork, memory_limit_fails_cleanly, .timeout = 60)
{
	struct fork_request req = { .count = 4, .start_children = true, .resume_parent = true };
	struct vm *kids[4];
	struct rlimit lim;
	unsigned before;
	long vm_kib = 0;
	char line[256];
	FILE *f;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	before = vmm_list(&env.vmm, NULL, 0);
	f = fopen("/proc/self/status", "r");
	while (fgets(line, sizeof(line), f))
		sscanf(line, "VmSize: %ld kB", &vm_kib);
	fclose(f);
	lim.rlim_cur = lim.rlim_max = (rlim_t)(vm_kib + 96 * 1024) * 1024; /* room for one child */
	cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
	cr_assert_lt(vm_fork(env.root, &req, kids, NULL), 0, "the fork must fail");
	cr_assert_eq(vmm_list(&env.vmm, NULL, 0), before, "no half-made children registered");
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the parent goes on");
	fenv_destroy(&env);
}

/* Shells are made at idle priority; the clones' vCPUs must not inherit it. */
Test(fork, warm_shell_clones_run_at_normal_priority, .timeout = 60)
{
	struct fork_request req = { .count = 1, .start_children = true, .resume_parent = true };
	struct sched_param param;
	struct vm *kid;
	int policy;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "idle", NULL, 1, 64 * MiB); /* its clones stay, halted */
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	cr_assert_eq(shell_pool_create(&env.vmm.shells, &env.vmm.kvm, env.root->mem.size, 1,
				       &env.root->cpuid_mask, 2), 0);
	shell_pool_wait_full(env.vmm.shells, 10000);
	cr_assert_eq(vm_fork(env.root, &req, &kid, NULL), 0);
	cr_assert_eq(pthread_getschedparam(kid->vcpus[0]->thread, &policy, &param), 0);
	cr_assert_eq(policy, SCHED_OTHER, "policy %d", policy);
	vmm_put(&env.vmm, kid);
	fenv_destroy(&env);
}

/*
 * A first fork that moves the parent into a shell leaves its old machine to a
 * background teardown: once the VMM is gone, so are all of their fds.
 */
Test(fork, moves_into_shells_leak_nothing, .timeout = 120)
{
	struct fork_request req = { .count = 1, .start_children = true, .resume_parent = true };
	unsigned fds_before = process_open_fds();

	SKIP_WITHOUT_KVM();
	for (unsigned i = 0; i < 10; i++) {
		struct fork_stats st;
		struct vm *kid;

		fenv_boot_with_shells(&env, "idle", NULL, 1, 64 * MiB, 2);
		cr_assert(fenv_wait_reports(env.root, 1, 10));
		cr_assert_eq(vm_fork(env.root, &req, &kid, &st), 0);
		cr_assert(st.moved, "round %u: the parent moved into a shell", i);
		vmm_put(&env.vmm, kid);
		fenv_destroy(&env);
	}
	cr_assert_eq(process_open_fds(), fds_before, "open fds after 10 moves");
}
