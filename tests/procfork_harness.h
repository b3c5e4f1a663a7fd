/* Worker processes for the process-fork tests (tests/test_procfork*.c). */
#ifndef TESTS_PROCFORK_HARNESS_H
#define TESTS_PROCFORK_HARNESS_H

#include <sys/types.h>

/* The vm-fork binary of this build: it has the clone-worker command (the test binary has not). */
const char *pfh_worker_exe(void);
/* The command line a VMM starts clone workers with (fork/procfork.h): build/vm-fork's, or exe's. */
const char *const *pfh_worker_cmd(void);
const char *const *pfh_worker_cmd_of(const char *exe);
/*
 * Wait for pid up to timeout_s: its exit status, 0x100 | signal when a signal
 * ended it, -1 on a timeout (then it is killed and reaped), -2 if not a child.
 */
int pfh_wait(pid_t pid, unsigned timeout_s);
/* How many threads of pid have this scheduling policy (SCHED_*); *nthreads: all of them. */
int pfh_threads_with_policy(pid_t pid, int policy, unsigned *nthreads);

#endif
