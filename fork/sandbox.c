/*
 * A clone worker's sandbox (fork/sandbox.h): once its clone is loaded, the
 * worker needs KVM, its memory, its threads and its console, and nothing
 * else. No new privileges, then a seccomp filter (libseccomp) on every thread
 * that kills the whole process on any other syscall: no exec, no sockets, no
 * ptrace, no new processes, no file opened for writing. As Firecracker's
 * jailer and Solo5's tender drop what they no longer need after set-up.
 *
 * What stays allowed, and why:
 *   KVM ioctls (type 0xAE) and PAGEMAP_SCAN: running vCPUs and the fork
 *     engine's page scan (a guest may fork inside the worker);
 *   memory, threads (clone with CLONE_THREAD only; clone3 answers ENOSYS so
 *     that glibc falls back to clone), futexes, signals to its own threads;
 *   read, write, close and the like on the fds it has; memfd_create for a
 *     guest's forks; openat read-only (/proc/self/pagemap; never O_CREAT or a
 *     write mode); clocks, sleeps, scheduling of its own threads; exit;
 *   epoll and accept4: the virtio devices' I/O threads wait on the fds their
 *     backends opened before the sandbox (a TAP, a vsock listener) and take
 *     the host's connections to a listener.
 * A new socket fails with EPERM instead of killing the worker: a guest's
 * vsock connection to the host (which would need one) is refused, and the
 * clone goes on; a worker that could connect to any Unix socket on the host
 * would not be sandboxed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>

#include "core/log.h"
#include "fork/sandbox.h"

#define KVM_IOCTL_TYPE 0xAE

static const int allowed[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
	SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(close), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(lseek), SCMP_SYS(fcntl),
	SCMP_SYS(dup), SCMP_SYS(dup3), SCMP_SYS(ftruncate), SCMP_SYS(fallocate),
	SCMP_SYS(memfd_create), SCMP_SYS(eventfd2), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
	SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(mincore),
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(membarrier),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigtimedwait), SCMP_SYS(sigaltstack), SCMP_SYS(tgkill), SCMP_SYS(tkill),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrandom), SCMP_SYS(prctl),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_setscheduler), SCMP_SYS(sched_getscheduler),
	SCMP_SYS(sched_setattr), SCMP_SYS(sched_getparam), SCMP_SYS(setpriority),
	SCMP_SYS(getpriority), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
	SCMP_SYS(exit_group), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(accept4),
};

static int add_rules(scmp_filter_ctx ctx)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, KVM_IOCTL_TYPE << 8));
#ifdef PAGEMAP_SCAN
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_EQ, PAGEMAP_SCAN));
#endif
	/* Threads only: a new process would leave the sandbox's accounting. */
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 0);
	/* Read-only opens: no O_CREAT, O_TRUNC or write access. */
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ,
					       O_ACCMODE | O_CREAT | O_TRUNC | O_TMPFILE, O_RDONLY));
	return ret;
}

int sandbox_clone_worker(void)
{
	scmp_filter_ctx ctx;
	int ret;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		ret = -errno;
		pr_err("sandbox: no_new_privs: %d", ret);
		return ret;
	}
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		pr_err("sandbox: seccomp_init failed");
		return -ENOMEM;
	}
	/* Every thread of the worker: its vCPUs and its signal thread already run. */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (!ret)
		ret = add_rules(ctx);
	if (!ret)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret < 0)
		pr_err("sandbox: the seccomp filter was not installed: %d", ret);
	return ret;
}
