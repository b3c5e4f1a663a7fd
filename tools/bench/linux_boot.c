/*
 * Linux to userspace: `vm-fork run` of a kernel and the busybox initramfs,
 * timed from the fork() that starts vm-fork to the init's line on the guest
 * console, read from a pipe (no polling). With our small kernel and with
 * Debian's, and QEMU's boot of the small kernel beside them:
 *   linux_init         vm-fork run -> init, the small kernel (make guest-kernel)
 *   linux_init_debian  the same with Debian's /boot/vmlinuz-*
 *   linux_exit         init's line -> vm-fork exited 0 (its reboot -f)
 *   qemu_linux_init    qemu-system-x86_64 -accel kvm, the small kernel -> init
 * Measured at 256 MiB only: a boot's cost is not the RAM's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/layout.h"
#include "tools/bench/bench.h"

#define LINUX_CMDLINE "console=ttyS0 reboot=k panic=-1 i8042.noaux " \
		      "initcall_blacklist=cmos_init quiet"
#define INIT_LINE     "vm-fork-init: hello from userspace"
#define BOOT_LIMIT_MS 300000

struct boot_files {
	char vmfork[4096], initrd[4096], small[4096], debian[4096];
};

/* The build directory's files, found from guest_dir (BUILD/guest); "" when missing. */
static void boot_files(const struct bench_cfg *cfg, struct boot_files *f)
{
	glob_t g;

	snprintf(f->vmfork, sizeof(f->vmfork), "%s/../vm-fork", cfg->guest_dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/../linux/initramfs.cpio.gz", cfg->guest_dir);
	snprintf(f->small, sizeof(f->small), "%s/../linux/guest-bzImage", cfg->guest_dir);
	if (access(f->small, R_OK) < 0)
		f->small[0] = 0;
	f->debian[0] = 0;
	if (glob("/boot/vmlinuz-*", 0, NULL, &g) == 0 && g.gl_pathc > 0)
		snprintf(f->debian, sizeof(f->debian), "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
}

/* Start argv with its stdout and stderr on a pipe; returns the pid, *out the read end. */
static pid_t spawn_piped(const char *const argv[], int *out)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, STDIN_FILENO);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -errno;
	}
	*out = p[0];
	return pid;
}

/*
 * Read fd until INIT_LINE has gone by; returns 0, or -ETIMEDOUT / -EPIPE
 * (the writer ended first). The last bytes read stay in tail for a message.
 */
static int read_to_init(int fd, char *tail, size_t len)
{
	uint64_t end = now_ns() + BOOT_LIMIT_MS * 1000000ULL;
	size_t have = 0, want = strlen(INIT_LINE);

	tail[0] = 0;
	while (now_ns() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		/* Keep want bytes of what came before: the line may straddle reads. */
		if (have > want) {
			memmove(tail, tail + have - want, want);
			have = want;
		}
		n = read(fd, tail + have, len - have - 1);
		if (n <= 0)
			return -EPIPE;
		have += (size_t)n;
		tail[have] = 0;
		for (size_t i = 0; i < have; i++)
			if (!tail[i])
				tail[i] = ' ';
		if (strstr(tail, INIT_LINE))
			return 0;
	}
	return -ETIMEDOUT;
}

/* Read fd to its end (the writer exited) for up to ms, so that a writer never blocks on it. */
static void drain(int fd, unsigned ms)
{
	uint64_t end = now_ns() + ms * 1000000ULL;
	char buf[4096];

	while (now_ns() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 100) > 0 && read(fd, buf, sizeof(buf)) <= 0)
			return;
	}
}

/*
 * pid's exit status if it ends by itself within ms, else -1 after killing it.
 * Always reaps it. (Its pipe's end comes a moment before its exit status.)
 */
static int reap(pid_t pid, unsigned ms)
{
	int status;

	for (unsigned i = 0; i <= ms; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* One boot of argv to init: its time in *init_ns, and init -> exit in *exit_ns (if given). */
static int boot_once(const char *const argv[], uint64_t *init_ns, uint64_t *exit_ns)
{
	char tail[4096];
	uint64_t t0 = now_ns(), t1;
	int fd = -1, ret, status;
	pid_t pid = spawn_piped(argv, &fd);

	if (pid < 0)
		return (int)pid;
	ret = read_to_init(fd, tail, sizeof(tail));
	t1 = now_ns();
	*init_ns = t1 - t0;
	if (ret < 0)
		fprintf(stderr, "bench: %s never reached init (%s); its output ends:\n%s\n",
			argv[0], strerror(-ret), tail);
	/* The pipe's end is the VMM's exit: nothing else holds its write end. */
	drain(fd, ret < 0 ? 0 : 10000);
	close(fd);
	if (exit_ns)
		*exit_ns = now_ns() - t1;
	status = reap(pid, ret < 0 ? 0 : 1000);
	if (!ret && status != 0 && exit_ns) {
		fprintf(stderr, "bench: %s: init's reboot -f did not end it with status 0 (%d)\n",
			argv[0], status);
		ret = -EIO;
	}
	return ret;
}

/* Boot n times; fill row (and exit_row, if not ROW_NONE) at si. */
static int boot_row(struct bench_ctx *ctx, unsigned si, int row, int exit_row,
		    const char *const argv[], unsigned n)
{
	struct samples init, exit;
	int ret = 0;

	if (samples_init(&init, n) < 0 || samples_init(&exit, n) < 0) {
		samples_free(&init);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n && !ret; i++) {
		uint64_t t_init, t_exit;

		ret = boot_once(argv, &t_init, exit_row == ROW_NONE ? NULL : &t_exit);
		samples_add(&init, t_init);
		samples_add(&exit, exit_row == ROW_NONE ? 0 : t_exit);
	}
	if (ret < 0) {
		cell_note(ctx, row, si, "did not reach init: %s", strerror(-ret));
	} else {
		cell_set_samples(ctx, row, si, &init);
		if (exit_row != ROW_NONE)
			cell_set_samples(ctx, exit_row, si, &exit);
	}
	samples_free(&init);
	samples_free(&exit);
	return ret;
}

static int boot_vmfork(struct bench_ctx *ctx, unsigned si, const struct boot_files *f,
		       const char *kernel, int row, int exit_row, unsigned n)
{
	const char *const argv[] = {
		f->vmfork, "run", "--kernel", kernel, "--initrd", f->initrd, "--mem", "256M",
		"--cmdline", LINUX_CMDLINE, "--console", "stdio", NULL,
	};

	return boot_row(ctx, si, row, exit_row, argv, n);
}

static int boot_qemu(struct bench_ctx *ctx, unsigned si, const struct boot_files *f, unsigned n)
{
	const char *const argv[] = {
		ctx->cfg->qemu, "-accel", "kvm", "-cpu", "host", "-m", "256M", "-nographic",
		"-nodefaults", "-no-user-config", "-no-reboot", "-serial", "stdio",
		"-kernel", f->small, "-initrd", f->initrd, "-append", LINUX_CMDLINE, NULL,
	};

	return boot_row(ctx, si, ROW_QEMU_LINUX, ROW_NONE, argv, n);
}

int bench_linux(struct bench_ctx *ctx, unsigned si)
{
	unsigned n = ctx->cfg->quick ? 2 : 5;
	struct boot_files f;
	int ret = 0;

	if (ctx->cfg->sizes[si] != 256 * MiB)
		return 0;
	if (!ctx->have_kvm)
		return -ENODEV;
	boot_files(ctx->cfg, &f);
	if (!f.small[0])
		cell_note(ctx, ROW_LINUX_INIT, si, "no linux/guest-bzImage: make guest-kernel");
	else
		ret = boot_vmfork(ctx, si, &f, f.small, ROW_LINUX_INIT, ROW_LINUX_EXIT, n);
	if (!f.debian[0])
		cell_note(ctx, ROW_LINUX_DEBIAN, si, "no /boot/vmlinuz-*");
	else if (boot_vmfork(ctx, si, &f, f.debian, ROW_LINUX_DEBIAN, ROW_NONE, n) < 0)
		ret = -EIO;
	if (!ctx->cfg->qemu || !f.small[0])
		cell_note(ctx, ROW_QEMU_LINUX, si, "no QEMU or no small kernel");
	else if (boot_qemu(ctx, si, &f, n) < 0)
		ret = -EIO;
	return ret;
}
