/*
 * Per-clone cgroups (server/clone_cgroup.h) on a plain process: the limits
 * are written before it runs on, a process over its memory is ended by the
 * kernel and that is seen, and nothing is left. Where there is no cgroup v2
 * (this project's development hosts have v1), the reason must say so.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/clone_cgroup.h"

static const struct clone_limits limits = { .mem_max = 32 << 20, .cpus = 0.25 };

/* The cgroups to test on, or false (with the reason checked) where there are none. */
static bool open_or_explain(struct clone_cgroups *cg)
{
	struct statfs fs;
	int ret = clone_cgroups_open(cg, NULL, &limits);

	if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == 0x63677270) {
		cr_assert_eq(ret, 0, "cgroup v2 is here, and: %s", cg->why);
		cr_assert(cg->enforced);
		return true;
	}
	cr_expect_eq(ret, -ENOTSUP);
	cr_expect(!cg->enforced && strstr(cg->why, "cgroup v1"), "the reason: '%s'", cg->why);
	cr_log_warn("no cgroup v2 here: checked only the reason given (%s)", cg->why);
	return false;
}

static void read_text(const char *dir, const char *name, char *out, size_t size)
{
	char path[CLONE_CGROUP_PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	cr_assert(f, "%s", path);
	cr_assert(fgets(out, (int)size, f), "%s", path);
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* A child that waits for a byte on go, then writes mib MiB and waits to be ended. */
static pid_t child_eating(int go, unsigned mib)
{
	pid_t pid = fork();
	char c;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char *p;

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that fails or times out leaves none */
		if (read(go, &c, 1) != 1)
			_exit(1);
		p = malloc((size_t)mib << 20);
		for (size_t i = 0; p && i < (size_t)mib << 20; i += 4096)
			p[i] = 1;
		pause();
		_exit(0);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

Test(clone_cgroup, limits_hold_before_the_process_runs_on, .timeout = 60)
{
	struct clone_cgroups cg;
	struct clone_cgroup c;
	char text[128], want[64];
	int go[2];
	pid_t pid;
	struct stat st;

	if (!open_or_explain(&cg))
		return;
	cr_assert_eq(pipe(go), 0);
	pid = child_eating(go[0], 4);
	cr_assert_eq(clone_cgroup_enter(&cg, &c, pid, 77), 0);
	read_text(c.path, "memory.max", text, sizeof(text));
	cr_expect_str_eq(text, "33554432");
	read_text(c.path, "cpu.max", text, sizeof(text));
	cr_expect_str_eq(text, "25000 100000");
	read_text(c.path, "cgroup.procs", text, sizeof(text));
	cr_expect_eq(atoi(text), pid);
	snprintf(want, sizeof(want), "vm-fork-%d-clone-77", (int)getpid());
	cr_expect(strstr(c.path, want), "%s", c.path);
	cr_assert_eq(write(go[1], "x", 1), 1);
	/* Its 4 MiB are charged to its cgroup once written: wait for them, not for a time. */
	for (unsigned i = 0; i < 2000 && clone_cgroup_peak(&c) < (4 << 20); i++)
		usleep(10000);
	cr_expect_geq(clone_cgroup_peak(&c), 4 << 20, "peak %llu",
		      (unsigned long long)clone_cgroup_peak(&c));
	cr_expect(!clone_cgroup_oom_killed(&c));
	kill(pid, SIGKILL);
	reap(pid);
	strcpy(text, c.path);
	cr_expect_eq(clone_cgroup_remove(&c), 0);
	cr_expect_neq(stat(text, &st), 0, "%s is still there", text);
	close(go[0]);
	close(go[1]);
}

Test(clone_cgroup, over_its_memory_a_process_ends_alone, .timeout = 60)
{
	struct clone_cgroups cg;
	struct clone_cgroup c;
	int go[2], status;
	pid_t pid;

	if (!open_or_explain(&cg))
		return;
	cr_assert_eq(pipe(go), 0);
	pid = child_eating(go[0], 128);
	cr_assert_eq(clone_cgroup_enter(&cg, &c, pid, 78), 0);
	cr_assert_eq(write(go[1], "x", 1), 1);
	status = reap(pid);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_expect(clone_cgroup_oom_killed(&c));
	cr_expect_leq(clone_cgroup_peak(&c), limits.mem_max);
	cr_expect_eq(clone_cgroup_remove(&c), 0);
	close(go[0]);
	close(go[1]);
}

Test(clone_cgroup, a_bad_parent_is_refused_with_its_name)
{
	struct clone_cgroups cg;
	struct statfs fs;

	if (statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != 0x63677270) {
		cr_expect_eq(clone_cgroups_open(&cg, "/nonexistent", &limits), -ENOTSUP);
		return;
	}
	cr_expect_eq(clone_cgroups_open(&cg, "/tmp", &limits), -ENOTSUP);
	cr_expect(strstr(cg.why, "/tmp is not a cgroup v2"), "%s", cg.why);
}
