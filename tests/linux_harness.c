/* Linux guests for the tests (tests/linux_harness.h). */
#include <criterion/criterion.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

/* vm-fork's i8042 has no AUX port and there is no CMOS RTC: Linux would spend seconds probing them. */
#define BASE_CMDLINE "console=ttyS0 reboot=k panic=-1 i8042.noaux initcall_blacklist=cmos_init"

char *linux_small_kernel(void)
{
	const char *path = harness_build_path("linux/guest-bzImage");

	SKIP_WITHOUT_KVM();
	if (access(path, R_OK) != 0)
		cr_skip_test("skipped: no build/linux/guest-bzImage (make guest-kernel)");
	return strdup(path);
}

static void make_initrd(struct linux_vm *vm, const char *init_script, const char *const *files)
{
	char script[96], cmd[1024];
	size_t n;
	FILE *f;

	snprintf(script, sizeof(script), "%s.init", vm->console);
	f = fopen(script, "w");
	cr_assert(f && fputs(init_script, f) >= 0 && fclose(f) == 0);
	snprintf(vm->initrd, sizeof(vm->initrd), "%s.cpio.gz", vm->console);
	n = (size_t)snprintf(cmd, sizeof(cmd), "%s/tools/make-initramfs.sh %s %s", VMFORK_SRC_DIR,
			     vm->initrd, script);
	for (; files && *files && n < sizeof(cmd); files++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " %s", *files);
	cr_assert_lt(n, sizeof(cmd));
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
	unlink(script);
}

void linux_start(struct linux_vm *vm, const char *kernel, const char *init_script,
		 const char *cmdline, const char *const *extra)
{
	linux_start_files(vm, kernel, init_script, NULL, cmdline, extra);
}

void linux_start_files(struct linux_vm *vm, const char *kernel, const char *init_script,
		       const char *const *files, const char *cmdline, const char *const *extra)
{
	char full[1024], console[96];
	const char *argv[48];
	unsigned n = 0;
	int fd;

	memset(vm, 0, sizeof(*vm));
	vm->status = -1;
	strcpy(vm->console, "/tmp/vm-fork-lx-XXXXXX");
	fd = mkstemp(vm->console);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(vm->api, sizeof(vm->api), "%s.sock", vm->console);
	make_initrd(vm, init_script, files);
	snprintf(full, sizeof(full), "%s %s", BASE_CMDLINE, cmdline ? cmdline : "");
	snprintf(console, sizeof(console), "file:%s", vm->console);
	for (const char *a[] = { harness_build_path("vm-fork"), "run", "--kernel", kernel,
				 "--initrd", vm->initrd, "--mem", "256M", "--cmdline", full,
				 "--console", console, "--api", vm->api, NULL }, **p = a; *p; p++)
		argv[n++] = *p;
	for (; extra && *extra && n < 47; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	vm->pid = fork();
	cr_assert(vm->pid >= 0);
	if (vm->pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
}

char *linux_debian_kernel(void)
{
	glob_t g;
	char *path = NULL;

	if (glob("/boot/vmlinuz-*", 0, NULL, &g) == 0 && g.gl_pathc > 0)
		path = strdup(g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	return path;
}

void linux_console_path(const struct linux_vm *vm, unsigned id, char *out, size_t len)
{
	if (id == 0)
		snprintf(out, len, "%s", vm->console);
	else
		snprintf(out, len, "%s.clone-%u.log", vm->api, id);
}

char *linux_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	cr_assert(buf);
	if (!f)
		return buf;
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool ended(struct linux_vm *vm)
{
	int status;

	if (vm->status < 0 && waitpid(vm->pid, &status, WNOHANG) == vm->pid)
		vm->status = status;
	return vm->status >= 0;
}

char *linux_wait_for(struct linux_vm *vm, const char *path, bool (*done)(const char *),
		     unsigned secs)
{
	char *out = NULL;

	for (unsigned i = 0; i < harness_wait_s(secs) * 4; i++) {
		/* Ask before reading: what a VMM that ended wrote is all in the file by then. */
		bool gone = ended(vm);

		free(out);
		out = linux_slurp(path);
		if (done(out) || gone)
			return out;
		usleep(250000);
	}
	return out;
}

int linux_wait_exit(struct linux_vm *vm, unsigned secs)
{
	for (unsigned i = 0; i < harness_wait_s(secs) * 10 && !ended(vm); i++)
		usleep(100000);
	if (vm->status < 0)
		return -1;
	return WIFEXITED(vm->status) ? WEXITSTATUS(vm->status) : 128 + WTERMSIG(vm->status);
}

void linux_cli(struct linux_vm *vm, const char *cmd, char *out, size_t len, ...)
{
	char *argv[16] = { "vm-fork", (char *)cmd, "--api", vm->api, "--id", "0" };
	unsigned n = 6;
	va_list ap;

	va_start(ap, len);
	while (n < 15 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(harness_run_cli(argv, out, len, 60), 0, "vm-fork %s: %s", cmd, out);
}

void linux_stop(struct linux_vm *vm)
{
	char path[128];

	if (!ended(vm)) {
		kill(vm->pid, SIGTERM);
		waitpid(vm->pid, NULL, 0);
	}
	unlink(vm->console);
	unlink(vm->initrd);
	for (unsigned id = 1; id < 64; id++) {
		linux_console_path(vm, id, path, sizeof(path));
		unlink(path);
	}
}

const char *linux_tail(const char *out)
{
	size_t n = strlen(out);

	return out + (n > 3000 ? n - 3000 : 0);
}

int linux_unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = harness_wait_s(120) };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s", path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

void linux_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	char c;

	while (n + 1 < size && read(fd, &c, 1) == 1 && c != '\n')
		buf[n++] = c;
	buf[n] = '\0';
}

const char linux_fn_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t devtmpfs dev /dev\n"
	"/bin/fn-words 8080 &\n"
	"while :; do sleep 10; done\n";
