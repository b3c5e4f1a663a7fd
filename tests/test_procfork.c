/*
 * Clones in their own processes (fork/procfork.h): they run and exit with
 * their own status, a SIGKILLed one harms nobody, fds do not leak, and the
 * latency beside the in-process fork. Garbage sent to a worker:
 * tests/test_procfork_bad.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/process_stats.h"
#include "fork/procfork.h"
#include "fork/procmsg.h"
#include "fork/procpool.h"
#include "fork/shells.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"
#include "tests/procfork_harness.h"

#define FS_RESULT_ARG "expect=0x1159a5aa47cc3efb" /* guest/fork_state.c's reference */

static struct fork_env env;

static void boot_template(const char *guest, const char *cmdline)
{
	SKIP_WITHOUT_KVM();
	fenv_boot(&env, guest, cmdline, 1, 64 * MiB);
	if (!strcmp(guest, "wait_fork"))
		cr_assert(fenv_wait_reports(env.root, 1, 10), "the guest never got ready");
}

static struct proc_pool *make_pool(unsigned target)
{
	struct proc_pool *pool;

	cr_assert_eq(proc_pool_create(&pool, pfh_worker_cmd(), env.root, target), 0);
	if (target)
		cr_assert_eq(proc_pool_wait_full(pool, 30000), target, "warm workers never came");
	return pool;
}

Test(procfork, three_warm_workers_run_the_clones, .timeout = 120)
{
	struct proc_pool *pool;
	struct proc_clone c[3];
	struct fork_stats st;

	boot_template("wait_fork", "timeout_ms=60000");
	pool = make_pool(3);
	cr_assert_eq(vm_fork_to_pool(pool, env.root, 3, c, &st), 0);
	cr_assert_eq(st.from_shells, 3, "every clone from a warm worker");
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(c[i].id, 1 + i, "consecutive ids");
		cr_assert_gt(c[i].pid, 0);
		for (unsigned j = 0; j < i; j++)
			cr_assert_neq(c[i].pid, c[j].pid, "a process each");
		cr_assert_eq(pfh_wait(c[i].pid, 30), 0x40 | (int)c[i].id,
			     "clone %u's process ends with the clone's status", i);
	}
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the template goes on");
	cr_log_info("3 process clones: paused %llu us, total %llu us",
		    (unsigned long long)st.paused_ns / 1000,
		    (unsigned long long)st.total_ns / 1000);
	proc_pool_destroy(pool);
	fenv_destroy(&env);
}

/* Every register, MSR and page crossed over: the clones end with the unforked result. */
Test(procfork, state_crosses_into_cold_workers, .timeout = 120)
{
	struct proc_pool *cold;
	struct proc_clone c[2];
	struct fork_stats st;

	boot_template("fork_state", FS_RESULT_ARG);
	cold = make_pool(0);
	cr_assert(fenv_wait_console(&env, "fork_state: computing", 60), "it never computed");
	cr_assert_eq(vm_fork_to_pool(cold, env.root, 2, c, &st), 0);
	cr_assert_eq(st.from_shells, 0, "no warm workers: every one cold");
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(pfh_wait(c[i].pid, 60), 0, "clone %llu: fork_state's checks",
			     (unsigned long long)c[i].id);
	cr_assert_eq(fenv_wait_exit(env.root, 60), 0, "the template's own checks");
	proc_pool_destroy(cold);
	fenv_destroy(&env);
}

static bool still_running(pid_t pid)
{
	int status;

	return waitpid(pid, &status, WNOHANG) == 0;
}

/* SIGKILL one clone's process while its siblings and the template compute. */
Test(procfork, sigkill_of_one_harms_no_one, .timeout = 180)
{
	struct proc_pool *pool;
	struct proc_clone c[3];
	unsigned nthreads;
	int threads_normal;

	/* About 8x the default work: seconds, so everyone is still busy at the kill. */
	boot_template("fork_state", "iters=240000000");
	pool = make_pool(3);
	cr_assert(fenv_wait_console(&env, "fork_state: computing", 60), "it never computed");
	cr_assert_eq(vm_fork_to_pool(pool, env.root, 3, c, NULL), 0);
	threads_normal = pfh_threads_with_policy(c[0].pid, SCHED_OTHER, &nthreads);
	cr_assert_eq(kill(c[1].pid, SIGKILL), 0);
	cr_assert_eq(pfh_wait(c[1].pid, 10), 0x100 | SIGKILL, "killed");
	cr_assert(still_running(c[0].pid) && still_running(c[2].pid),
		  "the siblings were still running at the kill (lengthen iters otherwise)");
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the template runs on");
	/* Warmed up at SCHED_BATCH in the background; the clone itself runs normally. */
	cr_assert_gt(nthreads, 1, "a worker has its vCPU thread");
	cr_assert_eq(threads_normal, (int)nthreads, "%d of %u threads at SCHED_OTHER",
		     threads_normal, nthreads);
	cr_assert_eq(pfh_wait(c[0].pid, 120), 0, "sibling 1 finishes its work correctly");
	cr_assert_eq(pfh_wait(c[2].pid, 120), 0, "sibling 3 finishes its work correctly");
	cr_assert_eq(fenv_wait_exit(env.root, 120), 0, "the template finishes correctly");
	proc_pool_destroy(pool);
	fenv_destroy(&env);
}

/* Whether /proc/PID/status has the line "key:\tvalue". */
static bool status_says(pid_t pid, const char *key, const char *value)
{
	char path[64], line[256], want[128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(want, sizeof(want), "%s:\t%s\n", key, value);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strcmp(line, want);
	if (f)
		fclose(f);
	return found;
}

/* Once its clone is loaded, a worker runs it under seccomp, no new privileges (fork/sandbox.h). */
Test(procfork, workers_run_sandboxed, .timeout = 180)
{
	struct proc_pool *pool;
	struct proc_clone c;
	bool sandboxed = false;

	boot_template("fork_state", NULL);
	pool = make_pool(1);
	cr_assert(fenv_wait_console(&env, "fork_state: computing", 60), "it never computed");
	cr_assert_eq(vm_fork_to_pool(pool, env.root, 1, &c, NULL), 0);
	/* The worker answers, then installs the filter: wait for it to show. */
	for (unsigned i = 0; i < harness_wait_s(10) * 100 && !sandboxed; i++) {
		sandboxed = status_says(c.pid, "Seccomp", "2");
		if (!sandboxed)
			usleep(10000);
	}
	cr_expect(sandboxed, "worker %d is not under a seccomp filter", (int)c.pid);
	cr_expect(status_says(c.pid, "NoNewPrivs", "1"), "worker %d may gain privileges", (int)c.pid);
	cr_assert_eq(pfh_wait(c.pid, 120), 0, "the clone finishes its work correctly in the sandbox");
	cr_assert_eq(fenv_wait_exit(env.root, 120), 0, "the template finishes correctly");
	proc_pool_destroy(pool);
	fenv_destroy(&env);
}

/* SIGTERM: a running clone stops (status 128 + 15); a worker still waiting for a job just ends. */
Test(procfork, sigterm_stops_clones_and_workers, .timeout = 120)
{
	struct procmsg_shape shape;
	struct proc_pool *pool;
	struct proc_clone c;
	pid_t idle;
	int sock;

	boot_template("fork_state", "iters=240000000");
	pool = make_pool(1);
	cr_assert(fenv_wait_console(&env, "fork_state: computing", 60), "it never computed");
	cr_assert_eq(vm_fork_to_pool(pool, env.root, 1, &c, NULL), 0);
	cr_assert_eq(kill(c.pid, SIGTERM), 0);
	cr_assert_eq(pfh_wait(c.pid, 30), 128 + SIGTERM, "the clone stopped by the host");
	cr_assert_eq(proc_worker_spawn(pfh_worker_cmd(), &idle, &sock), 0);
	proc_shape_of(env.root, &shape);
	cr_assert_eq(procmsg_send(sock, &shape, sizeof(shape), NULL, 0), 0);
	cr_assert_eq(procmsg_recv_status(sock, PROCMSG_READY, 30000), 0);
	cr_assert_eq(kill(idle, SIGTERM), 0);
	cr_assert_eq(pfh_wait(idle, 30), 128 + SIGTERM, "a warm worker ends");
	close(sock);
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the template runs on");
	proc_pool_destroy(pool);
	fenv_destroy(&env);
}

Test(procfork, bad_requests_start_nothing, .timeout = 60)
{
	struct proc_pool *cold, *missing;
	struct proc_clone c[1];
	uint64_t t;

	boot_template("wait_fork", "timeout_ms=60000");
	cold = make_pool(0);
	cr_assert_eq(vm_fork_to_pool(cold, env.root, 0, c, NULL), -EINVAL);
	cr_assert_eq(vm_fork_to_pool(cold, env.root, FORK_MAX_COUNT + 1, c, NULL), -EINVAL);
	/* No binary to run: its pool never fills, its forks fail, the template runs on. */
	cr_assert_eq(proc_pool_create(&missing, pfh_worker_cmd_of("/nonexistent/vm-fork"), env.root,
				      2), 0);
	cr_assert_eq(vm_fork_to_pool(missing, env.root, 1, c, NULL), -ENOENT);
	cr_assert_eq(proc_pool_ready(missing), 0);
	t = now_ns();
	proc_pool_destroy(missing);
	cr_assert_lt(now_ns() - t, 1000000000ULL, "the refill thread's back-off ends at once");
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING);
	vm_request_stop(env.root, VM_STOP_REQUESTED, 0);
	vm_wait(env.root);
	cr_assert_eq(vm_fork_to_pool(cold, env.root, 1, c, NULL), -EINVAL, "a stopped VM");
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "no worker process left behind");
	cr_assert_eq(errno, ECHILD);
	proc_pool_destroy(cold);
	fenv_destroy(&env);
}

Test(procfork, fifty_process_forks_leak_no_fd, .timeout = 300)
{
	struct proc_pool *pool;
	unsigned before = 0;

	boot_template("wait_fork", "timeout_ms=600000");
	pool = make_pool(2);
	for (unsigned i = 0; i < 51; i++) {
		struct proc_clone c;

		if (i == 1) { /* after the first fork froze the base */
			cr_assert_eq(proc_pool_wait_full(pool, 30000), 2);
			before = process_open_fds();
		}
		cr_assert_eq(vm_fork_to_pool(pool, env.root, 1, &c, NULL), 0, "fork %u", i);
		cr_assert_eq(pfh_wait(c.pid, 30), 0x40 | (int)(c.id & 0x3f), "clone %u", i);
	}
	cr_assert_eq(proc_pool_wait_full(pool, 30000), 2);
	cr_assert_eq(process_open_fds(), before, "open fds after 50 process forks");
	proc_pool_destroy(pool);
	cr_assert_eq(process_open_fds(), before - 2, "the pool's two sockets are gone too");
	fenv_destroy(&env);
}

/* ---- Through the API and the command line (vm-fork run, vm-fork fork --processes) ---- */

static bool file_says(const char *path, const char *what, unsigned timeout_s)
{
	struct timespec ms10 = { 0, 10 * 1000 * 1000 };
	char buf[4096];

	for (unsigned i = 0; i < timeout_s * 100; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = 0;
		if (strstr(buf, what))
			return true;
		nanosleep(&ms10, NULL);
	}
	return false;
}

#define PF_CLI(out, ...) harness_run_cli((char *const[]){ "vm-fork", __VA_ARGS__, NULL }, out, \
					 sizeof(out), 30)

/* Whether `vm-fork info` lists process clone id as stopped with status (waits up to 6 s). */
static bool listed_as_stopped(char *sock, unsigned id, const char *status)
{
	char out[4096], ended[64];
	const char *line;

	snprintf(ended, sizeof(ended), "\n%u      0      stopped", id);
	for (unsigned tries = 0; tries < 300; tries++) {
		cr_assert_eq(PF_CLI(out, "info", "--api", sock), 0, "%s", out);
		line = strstr(out, ended);
		if (line)
			return strstr(line, status) && strstr(line, status) < strchr(line + 1, '\n');
		usleep(20000);
	}
	return false;
}

Test(procfork, api_and_cli_fork_into_processes, .timeout = 120)
{
	char sock[96], root_log[128], clone_log[128], console[140], kernel[4096], out[4096];
	char *argv[] = { "vm-fork", "run", "--kernel", kernel, "--mem", "64M", "--cmdline",
			 "timeout_ms=60000", "--api", sock, "--console", console, NULL };
	int status;
	pid_t vmm;

	SKIP_WITHOUT_KVM();
	snprintf(sock, sizeof(sock), "/tmp/vmf-procfork-%d.sock", (int)getpid());
	snprintf(root_log, sizeof(root_log), "%s.root.log", sock);
	snprintf(console, sizeof(console), "file:%s", root_log);
	snprintf(kernel, sizeof(kernel), "%s", harness_build_path("guest/wait_fork.elf"));
	cr_assert_eq(posix_spawn(&vmm, pfh_worker_exe(), NULL, NULL, argv, environ), 0);
	cr_assert(file_says(root_log, "wait_fork: ready", 30), "the VMM's guest never got ready");
	cr_assert_eq(PF_CLI(out, "fork", "--api", sock, "--count", "2", "--processes"), 0, "%s", out);
	cr_assert(strstr(out, "clone 1 pid ") && strstr(out, "clone 2 pid "), "%s", out);
	for (unsigned id = 1; id <= 2; id++) {
		char says[64];

		snprintf(clone_log, sizeof(clone_log), "%s.clone-%u.log", sock, id);
		snprintf(says, sizeof(says), "wait_fork: clone %u generation 1", id);
		cr_assert(file_says(clone_log, says, 30), "clone %u's own console", id);
		unlink(clone_log);
	}
	cr_assert_eq(PF_CLI(out, "fork", "--api", sock, "--processes", "--paused"), 1, "%s", out);
	cr_assert(strstr(out, "always start"), "%s", out);
	cr_assert(listed_as_stopped(sock, 1, "exit status 65"), "clone 1 ends 0x40 | 1");
	cr_assert(listed_as_stopped(sock, 2, "exit status 66"), "clone 2 ends 0x40 | 2");
	cr_assert_eq(PF_CLI(out, "stop", "--api", sock, "--id", "0"), 0, "%s", out);
	cr_assert_eq(waitpid(vmm, &status, 0), vmm);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vm-fork run: %#x", status);
	unlink(root_log);
}

/* The API lists clones in their own processes and stops them by id (SIGTERM: status 143). */
Test(procfork, api_lists_and_stops_clone_processes, .timeout = 120)
{
	char sock[96], kernel[4096], out[4096];
	char *argv[] = { "vm-fork", "run", "--kernel", kernel, "--mem", "64M", "--api", sock,
			 "--console", "none", NULL };
	unsigned tries = 0;
	int status;
	pid_t vmm;

	SKIP_WITHOUT_KVM();
	snprintf(sock, sizeof(sock), "/tmp/vmf-proclist-%d.sock", (int)getpid());
	snprintf(kernel, sizeof(kernel), "%s", harness_build_path("guest/idle.elf"));
	cr_assert_eq(posix_spawn(&vmm, pfh_worker_exe(), NULL, NULL, argv, environ), 0);
	while (PF_CLI(out, "info", "--api", sock) != 0 && ++tries < 500)
		usleep(20000);
	cr_assert_eq(PF_CLI(out, "fork", "--api", sock, "--count", "2", "--processes"), 0, "%s", out);
	cr_assert_eq(PF_CLI(out, "info", "--api", sock), 0, "%s", out);
	cr_assert(strstr(out, "clones in their own processes"), "%s", out);
	cr_assert(strstr(out, "\n1      0      running"), "idle clones run until stopped: %s", out);
	cr_assert(strstr(out, "\n2      0      running"), "%s", out);
	cr_assert_eq(PF_CLI(out, "info", "--api", sock, "--id", "1"), 0, "%s", out);
	cr_assert(strstr(out, "state        running"), "GET /v1/vms/1: %s", out);
	for (unsigned id = 1; id <= 2; id++) {
		char ids[8];

		snprintf(ids, sizeof(ids), "%u", id);
		cr_assert_eq(PF_CLI(out, "stop", "--api", sock, "--id", ids), 0, "%s", out);
		cr_assert(strstr(out, "clone process"), "%s", out);
		cr_assert(listed_as_stopped(sock, id, "exit status 143"), "clone %u: SIGTERM", id);
		cr_assert_eq(PF_CLI(out, "info", "--api", sock, "--id", ids), 0, "%s", out);
		cr_assert(strstr(out, "state        stopped") && strstr(out, "exit_status  143") &&
			  strstr(out, "pid "), "GET /v1/vms/%u: %s", id, out);
		cr_assert_eq(PF_CLI(out, "stop", "--api", sock, "--id", ids), 1, "%s", out);
		cr_assert(strstr(out, "has ended"), "%s", out);
	}
	cr_assert_eq(PF_CLI(out, "stop", "--api", sock, "--id", "99"), 1, "%s", out);
	cr_assert(strstr(out, "no VM with id 99"), "%s", out);
	cr_assert_eq(PF_CLI(out, "stop", "--api", sock, "--id", "0"), 0, "%s", out);
	cr_assert_eq(waitpid(vmm, &status, 0), vmm);
}

/* ---- Latency: process forks (warm, cold) beside in-process forks from warm shells ---- */

#define LAT_SAMPLES 15

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The p50 and the best of n samples, in us. */
struct lat {
	uint64_t p50, min;
};

static struct lat lat_of(uint64_t *ns, unsigned n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	return (struct lat){ .p50 = ns[n / 2] / 1000, .min = ns[0] / 1000 };
}

static struct lat in_process(struct lat *paused_us)
{
	uint64_t total[LAT_SAMPLES], paused[LAT_SAMPLES];

	cr_assert_eq(shell_pool_create(&env.vmm.shells, &env.vmm.kvm, env.root->mem.size, 1,
				       &env.root->cpuid_mask, 2), 0);
	shell_pool_set_template(env.vmm.shells, &env.root->mem, NULL, 0);
	for (unsigned i = 0; i < LAT_SAMPLES; i++) {
		struct fork_stats st;
		struct vm *kid;

		shell_pool_wait_full(env.vmm.shells, 10000);
		fenv_fork(env.root, 1, &kid, &st);
		cr_assert_eq(st.from_shells, 1, "in-process fork %u from a warm shell", i);
		total[i] = st.total_ns;
		paused[i] = st.paused_ns;
		cr_assert_eq(fenv_wait_exit(kid, 30), 0x40 | (int)(kid->id & 0x3f));
		vmm_remove(&env.vmm, kid->id);
		vmm_put(&env.vmm, kid);
	}
	*paused_us = lat_of(paused, LAT_SAMPLES);
	return lat_of(total, LAT_SAMPLES);
}

static struct lat in_processes(struct proc_pool *pool, bool warm, struct lat *paused_us)
{
	uint64_t total[LAT_SAMPLES], paused[LAT_SAMPLES];

	for (unsigned i = 0; i < LAT_SAMPLES; i++) {
		struct fork_stats st;
		struct proc_clone c;

		if (warm)
			proc_pool_wait_full(pool, 30000);
		cr_assert_eq(vm_fork_to_pool(pool, env.root, 1, &c, &st), 0);
		cr_assert_eq(st.from_shells, warm ? 1 : 0, "process fork %u: warm %d", i, warm);
		total[i] = st.total_ns;
		paused[i] = st.paused_ns;
		cr_assert_eq(pfh_wait(c.pid, 30), 0x40 | (int)(c.id & 0x3f));
	}
	*paused_us = lat_of(paused, LAT_SAMPLES);
	return lat_of(total, LAT_SAMPLES);
}

static void log_lat(const char *what, struct lat total, struct lat paused)
{
	cr_log_info("  %-26s %6llu us p50 %6llu us best (paused %llu us p50)", what,
		    (unsigned long long)total.p50, (unsigned long long)total.min,
		    (unsigned long long)paused.p50);
}

Test(procfork, latency_beside_in_process_fork, .timeout = 300)
{
	struct lat in, warm_lat, cold_lat, in_p, warm_p, cold_p;
	struct proc_pool *warm, *cold;
	struct vm *first;

	boot_template("wait_fork", "timeout_ms=600000");
	warm = make_pool(2);
	cold = make_pool(0);
	fenv_fork(env.root, 1, &first, NULL); /* freezes the base: not measured */
	vmm_put(&env.vmm, first);
	in = in_process(&in_p);
	warm_lat = in_processes(warm, true, &warm_p);
	cold_lat = in_processes(cold, false, &cold_p);
	cr_log_info("fork of a running 64 MiB 1-vCPU VM into 1 clone, until it runs (%d samples):",
		    LAT_SAMPLES);
	log_lat("in-process, warm shell:", in, in_p);
	log_lat("own process, warm worker:", warm_lat, warm_p);
	log_lat("own process, cold worker:", cold_lat, cold_p);
	cr_assert_lt(warm_lat.p50, cold_lat.p50, "a warm worker must beat starting one");
	proc_pool_destroy(warm);
	proc_pool_destroy(cold);
	fenv_destroy(&env);
}
