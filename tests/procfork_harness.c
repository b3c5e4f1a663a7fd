#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/procfork_harness.h"

const char *pfh_worker_exe(void)
{
	const char *exe = harness_build_path("vm-fork");

	cr_assert_eq(access(exe, X_OK), 0, "%s is not built (make all builds it)", exe);
	return exe;
}

/* Made anew each time (a pool keeps the pointer); a test's few are never freed. */
const char *const *pfh_worker_cmd_of(const char *exe)
{
	const char **cmd = calloc(6, sizeof(*cmd));

	cr_assert(cmd);
	cmd[0] = strdup(exe);
	cmd[1] = "clone-worker";
	cmd[2] = "--socket";
	cmd[3] = "3";
	cmd[4] = "-q";
	return cmd;
}

const char *const *pfh_worker_cmd(void)
{
	return pfh_worker_cmd_of(pfh_worker_exe());
}

int pfh_wait(pid_t pid, unsigned timeout_s)
{
	struct timespec ms2 = { 0, 2 * 1000 * 1000 };
	int status;

	for (unsigned i = 0; i < harness_wait_s(timeout_s) * 500; i++) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 0x100 | WTERMSIG(status);
		if (got < 0)
			return -2;
		nanosleep(&ms2, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* Field 41 of /proc/PID/task/TID/stat; -1 when it cannot be read. */
static int thread_policy(pid_t pid, const char *tid)
{
	char path[128], buf[1024], *p;
	int policy = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')'))) {
		p++;
		/* p is at the space before field 3 */
		for (int field = 3; p && field < 41; field++)
			p = strchr(p + 1, ' ');
		if (p)
			policy = atoi(p + 1);
	}
	fclose(f);
	return policy;
}

int pfh_threads_with_policy(pid_t pid, int policy, unsigned *nthreads)
{
	char path[64];
	struct dirent *e;
	int matching = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	*nthreads = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		(*nthreads)++;
		matching += thread_policy(pid, e->d_name) == policy;
	}
	if (d)
		closedir(d);
	return matching;
}
