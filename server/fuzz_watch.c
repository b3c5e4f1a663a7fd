/*
 * The helper and the watcher of vm-fork fuzz (server/fuzz.h).
 *
 * afl-fuzz kills the pid it was told when a run passes its -t, then waits for
 * that run's status. The pid is a helper process (vm-fork fuzz-helper) that
 * only waits; the watcher thread polls its pidfd, and when it dies ends the
 * run as a hang (kicking the vCPU out of the guest), reaps it and starts the
 * next. Without afl-fuzz the watcher's poll timeout is the run's time budget.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "server/fuzz_int.h"

extern char **environ;

int fuzz_helper_main(void)
{
	pid_t parent = getppid();

	/* Gone with the VMM, whatever kills it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || parent == 1)
		return 1;
	for (;;)
		pause();
}

/* Start a helper: signals at their defaults (any kill signal ends it), no fds of ours. */
static int spawn_helper(struct fuzz_session *s)
{
	char *argv[] = { (char *)"vm-fork", (char *)"fuzz-helper", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	pid_t pid;
	int ret, pidfd;

	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	ret = posix_spawn(&pid, s->cfg.helper_exe, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret) {
		pr_err("fuzz: cannot start the helper %s: %s", s->cfg.helper_exe, strerror(ret));
		return -ret;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		ret = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return ret;
	}
	s->helper = pid;
	s->helper_pidfd = pidfd;
	s->helper_gen++;
	pthread_cond_broadcast(&s->changed);
	return 0;
}

/* Reap the dead helper and start the next one (lock held). */
static int replace_helper(struct fuzz_session *s)
{
	if (s->helper > 0) {
		waitpid(s->helper, NULL, 0);
		close(s->helper_pidfd);
		s->helper = 0;
		s->helper_pidfd = -1;
	}
	return s->stopping ? 0 : spawn_helper(s);
}

/*
 * afl-fuzz killed the last run's helper: wait for the watcher to replace it.
 * A helper that does not die within HELPER_DEATH_MS was not killed after all
 * (a fuzzer that says so wrongly): it serves on.
 */
#define HELPER_DEATH_MS 1000

pid_t fuzz_run_helper(struct fuzz_session *s, bool was_killed)
{
	struct timespec until = realtime_after_ms(HELPER_DEATH_MS);
	pid_t pid;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping && was_killed && s->helper_gen == s->run_helper_gen)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT)
			break;
	while (!s->stopping && s->helper <= 0)
		pthread_cond_wait(&s->changed, &s->lock);
	pid = s->stopping ? -1 : s->helper;
	s->run_helper_gen = s->helper_gen;
	pthread_mutex_unlock(&s->lock);
	return pid;
}

void fuzz_watch_poke(struct fuzz_session *s)
{
	uint64_t one = 1;

	/* Under afl-fuzz the watcher only waits for the helper's death: no wake-up per run. */
	if (s->cfg.afl && !s->stopping)
		return;
	if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("fuzz: cannot wake the watcher: %s", strerror(errno));
}

/* Until the run ends or the budget passes: the poll timeout (-1: none). */
static int budget_left_ms(struct fuzz_session *s)
{
	uint64_t end, now = now_ns();

	if (!s->run_active || !s->cfg.timeout_ns || s->cfg.afl)
		return -1;
	end = s->run_start_ns + s->cfg.timeout_ns;
	return now >= end ? 0 : (int)((end - now + 999999) / 1000000);
}

/*
 * No helper, or no watching: the session cannot go on. Whoever waits for a
 * helper is let go (the run cannot start), and the VM stops.
 */
static void give_up(struct fuzz_session *s, int err)
{
	pr_err("fuzz: the watcher cannot go on: %s", strerror(err));
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	vm_request_stop(s->vm, VM_STOP_ERROR, 1);
}

static void *watch(void *arg)
{
	struct fuzz_session *s = arg;

	for (;;) {
		struct pollfd p[2] = { { .events = POLLIN }, { .fd = s->wake_fd, .events = POLLIN } };
		uint64_t seq, drained;
		int n, timeout;

		pthread_mutex_lock(&s->lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		p[0].fd = s->helper_pidfd;
		seq = s->run_seq;
		timeout = budget_left_ms(s);
		pthread_mutex_unlock(&s->lock);
		n = poll(p, 2, timeout);
		if (n < 0 && errno != EINTR) {
			give_up(s, errno);
			break;
		}
		if (p[1].revents && read(s->wake_fd, &drained, sizeof(drained)) < 0)
			continue;
		if (p[0].revents) {
			pthread_mutex_lock(&s->lock);
			/* The run killed is the one that was told this helper's pid. */
			seq = s->run_active && s->run_helper_gen == s->helper_gen ? s->run_seq : 0;
			n = replace_helper(s);
			pthread_mutex_unlock(&s->lock);
			if (n < 0) {
				give_up(s, -n);
				break;
			}
			if (seq)
				fuzz_end_hang(s, seq, "killed by afl-fuzz on its timeout");
		} else if (n == 0) {
			fuzz_end_hang(s, seq, "over its time budget");
		}
	}
	return NULL;
}

int fuzz_watch_start(struct fuzz_session *s)
{
	int ret;

	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0)
		return -errno;
	if (s->cfg.afl) {
		pthread_mutex_lock(&s->lock);
		ret = spawn_helper(s);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			return ret;
	}
	ret = -pthread_create(&s->watcher, NULL, watch, s);
	s->watching = !ret;
	return ret;
}

void fuzz_watch_stop(struct fuzz_session *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	fuzz_watch_poke(s);
	if (s->watching)
		pthread_join(s->watcher, NULL);
	s->watching = false;
	if (s->helper > 0) {
		kill(s->helper, SIGKILL);
		replace_helper(s);
	}
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
}
