/* Snapshots on disk: write while running, restore many, diff snapshots, bad snapshots refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork/snapdir.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"

#define FS_RESULT 0x1159a5aa47cc3efbULL /* guest/fork_state.c's reference [0] */

static struct fork_env env;
static char dir[200];

static void fresh_dir(const char *tag)
{
	snprintf(dir, sizeof(dir), "/tmp/vm-fork-snap-%s-%d", tag, (int)getpid());
	cr_assert_eq(system("true"), 0);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "rm -rf %s %s.*", dir, dir);
		cr_assert_eq(system(cmd), 0);
	}
}

static void remove_dir(const char *d)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	cr_assert_eq(system(cmd), 0);
}

static int take_snapshot(struct vm *vm, const char *to, const char *base)
{
	struct snapshot_job *job;
	struct snapshot_progress p;
	int ret = vm_snapshot_start(vm, to, base, &job);

	if (ret < 0)
		return ret;
	ret = snapshot_job_wait(job);
	snapshot_job_progress(job, &p);
	cr_assert(p.done);
	cr_log_info("snapshot %s: %llu bytes, paused %llu us", to, (unsigned long long)p.bytes_done,
		    (unsigned long long)p.paused_ns / 1000);
	snapshot_job_free(job);
	return ret;
}

/* Restore count VMs from d into env's vmm and check each finishes fork_state right. */
static void restore_and_check(const char *d, unsigned count)
{
	struct snapshot_image img;
	struct vm *vms[4];

	cr_assert_eq(snapshot_open(d, env.vmm.kvm.supported_cpuid, &img), 0);
	for (unsigned i = 0; i < count; i++) {
		cr_assert_eq(vm_restore(&env.vmm, &img, i + 1, "none", &vms[i]), 0);
		cr_assert_eq(vm_resume(vms[i]), 0);
	}
	snapshot_close(&img);
	for (unsigned i = 0; i < count; i++) {
		cr_assert_eq(fenv_wait_exit(vms[i], 60), 0, "restored VM %u", i);
		cr_assert_eq(fenv_report(vms[i], 0), FS_RESULT, "restored VM %u's result", i);
		cr_assert_eq(fenv_report(vms[i], 4), 1, "time never went backwards");
	}
}

Test(snapshot, running_vm_to_disk_and_back, .timeout = 180)
{
	struct stat st;

	SKIP_WITHOUT_KVM();
	fresh_dir("run");
	fenv_boot(&env, "fork_state", NULL, 1, 64 * MiB);
	cr_assert(fenv_wait_console(&env, "fork_state: computing", 60), "it never computed");
	cr_assert_eq(take_snapshot(env.root, dir, NULL), 0);
	cr_assert_eq(stat(dir, &st), 0, "the directory exists once written");
	restore_and_check(dir, 2);
	cr_assert_eq(fenv_wait_exit(env.root, 60), 0, "the original finished too");
	cr_assert_eq(fenv_report(env.root, 0), FS_RESULT);
	fenv_destroy(&env);
	remove_dir(dir);
}

Test(snapshot, diff_on_top_of_base, .timeout = 180)
{
	char diff[300];
	struct snapshot_image img;
	struct vm *vm;

	SKIP_WITHOUT_KVM();
	fresh_dir("base");
	snprintf(diff, sizeof(diff), "%s-diff", dir);
	remove_dir(diff);
	fenv_boot(&env, "fork_state", NULL, 1, 64 * MiB);
	cr_assert(fenv_wait_console(&env, "fork_state: computing", 60), "it never computed");
	cr_assert_eq(take_snapshot(env.root, dir, NULL), 0);
	vm_request_stop(env.root, VM_STOP_REQUESTED, 0);
	cr_assert_eq(snapshot_open(dir, env.vmm.kvm.supported_cpuid, &img), 0);
	cr_assert_eq(vm_restore(&env.vmm, &img, 1, "none", &vm), 0);
	snapshot_close(&img);
	cr_assert_eq(vm_resume(vm), 0);
	cr_assert(fenv_wait_private(vm, 60), "the restored VM never wrote a page of its own");
	cr_assert_eq(take_snapshot(vm, diff, "/nonexistent-base"), -ENOENT);
	cr_assert_eq(take_snapshot(vm, diff, dir), 0);
	restore_and_check(diff, 1);
	cr_assert_eq(fenv_wait_exit(vm, 60), 0);
	fenv_destroy(&env);
	remove_dir(dir);
	remove_dir(diff);
}

static void corrupt(const char *name, off_t off, const char *bytes)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, bytes, strlen(bytes), off), (ssize_t)strlen(bytes));
	close(fd);
}

Test(snapshot, bad_snapshots_refused, .timeout = 120)
{
	struct snapshot_image img;
	char path[300];

	SKIP_WITHOUT_KVM();
	fresh_dir("bad");
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 32 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	cr_assert_eq(take_snapshot(env.root, dir, NULL), 0);
	cr_assert_eq(take_snapshot(env.root, dir, NULL), -EEXIST, "never over an existing one");
	cr_assert_eq(snapshot_open(dir, env.vmm.kvm.supported_cpuid, &img), 0);
	snapshot_close(&img);
	snprintf(path, sizeof(path), "%s/mem", dir);
	cr_assert_eq(truncate(path, 16 * MiB), 0);
	cr_assert_lt(snapshot_open(dir, env.vmm.kvm.supported_cpuid, &img), 0, "short mem file");
	cr_assert_eq(truncate(path, 32 * MiB), 0);
	corrupt("state.dtb", 200, "garbage!");
	cr_assert_lt(snapshot_open(dir, env.vmm.kvm.supported_cpuid, &img), 0, "corrupt state");
	snprintf(path, sizeof(path), "%s/state.dtb", dir);
	cr_assert_eq(unlink(path), 0);
	cr_assert_lt(snapshot_open(dir, env.vmm.kvm.supported_cpuid, &img), 0, "no state");
	cr_assert_lt(snapshot_open("/nonexistent", env.vmm.kvm.supported_cpuid, &img), 0);
	fenv_destroy(&env);
	remove_dir(dir);
}

Test(snapshot, failed_write_leaves_nothing, .timeout = 60)
{
	struct stat st;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=60000", 1, 32 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	cr_assert_lt(take_snapshot(env.root, "/proc/vm-fork-cannot-write-here", NULL), 0);
	cr_assert_neq(stat("/proc/vm-fork-cannot-write-here", &st), 0);
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the VM goes on");
	fenv_destroy(&env);
}

/* The command line end to end: run with an API, snapshot it, restore two VMs from it. */
Test(snapshot, cli_snapshot_and_restore, .timeout = 180)
{
	static char out[16384];
	char sock[300], con0[300], con1[300], orig[300], ospec[320], spec[320], cspec[320];
	char *kernel = strdup(harness_build_path("guest/fork_state.elf"));
	pid_t pid;
	int status;

	SKIP_WITHOUT_KVM();
	fresh_dir("cli");
	snprintf(sock, sizeof(sock), "%s.sock", dir);
	snprintf(con0, sizeof(con0), "%s.first.log", dir);
	snprintf(con1, sizeof(con1), "%s.vm1.log", dir); /* ids 0 and 1 in the restoring VMM */
	snprintf(orig, sizeof(orig), "%s.orig.log", dir);
	snprintf(ospec, sizeof(ospec), "file:%s", orig);
	pid = fork();
	if (pid == 0) {
		execl(harness_build_path("vm-fork"), "vm-fork", "run", "--kernel", kernel, "--mem", "64M",
		      "--console", ospec, "--api", sock, (char *)NULL);
		_exit(127);
	}
	/* Snapshot it mid-computation: once it says it computes. */
	for (int i = 0; i < 6000 && (access(sock, F_OK) || !harness_file_has(orig, "fork_state: computing")); i++)
		usleep(10000);
	cr_assert(harness_file_has(orig, "fork_state: computing"), "the original never computed");
	cr_assert_eq(harness_run_cli((char *const[]){ "vm-fork", "snapshot", "--api", sock, dir, NULL },
				     out, sizeof(out), 60), 0, "%s", out);
	cr_assert(strstr(out, "written"), "%s", out);
	snprintf(spec, sizeof(spec), "file:%s", con0);
	snprintf(cspec, sizeof(cspec), "file:%s.vm%%u.log", dir);
	cr_assert_eq(harness_run_cli((char *const[]){ "vm-fork", "restore", dir, "--count", "2",
						       "--console", spec, "--clone-console", cspec, NULL },
				     out, sizeof(out), 120), 0, "%s", out);
	cr_assert(harness_file_has(con0, "fork_state: ok"), "the first restored VM finished right");
	cr_assert(harness_file_has(con1, "fork_state: ok"), "and the second");
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0, "the original finished right too");
	remove_dir(dir);
	unlink(con0);
	unlink(con1);
	unlink(orig);
	free(kernel);
}
