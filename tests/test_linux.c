/*
 * The slow tier: Linux and a busybox initramfs boot under `vm-fork run`, with
 * Debian's kernel and with our small one (configs/guest-kernel.config, built
 * by make guest-kernel). On every KVM but one whose guest CPL0 code is
 * emulated (nested PVM), Linux reaches the initramfs's init, whose
 * `reboot -f` must then end vm-fork with status 0. On PVM, Linux gets as far
 * as its early console and then stops, so there the test checks the banner,
 * our exact command line and the e820 map we passed (docs/kvm-in-qemu.md).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"
#include "vmm/boot.h"

#define LINUX_MEM "256M"
/*
 * vm-fork's i8042 has no AUX port and it has no CMOS RTC: without i8042.noaux
 * and the blacklist, Linux spends seconds (7.6 s under QEMU's TCG) probing them.
 */
#define LINUX_CMDLINE "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1 " \
		      "i8042.noaux initcall_blacklist=cmos_init vmfork.test=1"
#define INIT_LINE "vm-fork-init: hello from userspace"


static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	if (!f)
		return buf;
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The e820 lines Linux prints for the map vm-fork builds for LINUX_MEM. */
static int expected_e820(char lines[][128], int max)
{
	struct guest_mem mem;
	struct boot_e820_entry map[BOOT_E820_MAX];
	int n;

	cr_assert_eq(guest_mem_create(&mem, 256 * MiB, NULL), 0);
	n = boot_build_e820(&mem, map, BOOT_E820_MAX);
	guest_mem_destroy(&mem);
	cr_assert(n > 0 && n <= max);
	for (int i = 0; i < n; i++)
		snprintf(lines[i], 128, "BIOS-e820: [mem 0x%016llx-0x%016llx] %s",
			 (unsigned long long)map[i].addr,
			 (unsigned long long)(map[i].addr + map[i].size - 1),
			 map[i].type == E820_RAM ? "usable" : "reserved");
	return n;
}

/* "Command line: " followed by exactly ours and the end of the line (the console sends CR LF). */
static bool cmdline_seen(const char *out)
{
	static const char want[] = "Command line: " LINUX_CMDLINE;
	const char *p = strstr(out, want);

	return p && (p[sizeof(want) - 1] == '\r' || p[sizeof(want) - 1] == '\n');
}

static char e820_lines[BOOT_E820_MAX][128];
static int e820_count;

/* Every e820 line we passed: the first alone would stop the wait before the rest were printed. */
static bool all_e820_seen(const char *out)
{
	if (!e820_count)
		e820_count = expected_e820(e820_lines, BOOT_E820_MAX);
	for (int i = 0; i < e820_count; i++)
		if (!strstr(out, e820_lines[i]))
			return false;
	return true;
}

static bool early_boot_seen(const char *out)
{
	return strstr(out, "Linux version") && cmdline_seen(out) && all_e820_seen(out);
}

/* vm-fork run of kernel, its console to console_path; with api, its API there and 2 warm shells. */
static pid_t start_linux(const char *kernel, const char *console_path, const char *api)
{
	char console[4200];
	pid_t pid;

	snprintf(console, sizeof(console), "file:%s", console_path);
	pid = fork();
	if (pid == 0) {
		char *argv[] = {
			strdup(harness_build_path("vm-fork")), "run", "--kernel", (char *)kernel,
			"--initrd", strdup(harness_build_path("linux/initramfs.cpio.gz")),
			"--mem", LINUX_MEM, "--cmdline", LINUX_CMDLINE, "--console", console,
			api ? "--api" : NULL, (char *)api, "--shells", "2", NULL,
		};
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The VMM's wait status once it ended, -1 before. */
static int vmm_status = -1;

static bool vmm_ended(pid_t pid)
{
	int status;

	if (vmm_status < 0 && waitpid(pid, &status, WNOHANG) == pid)
		vmm_status = status;
	return vmm_status >= 0;
}

/* Poll the console until done() holds, the VMM exits, or the time is up. */
static char *wait_for(pid_t pid, const char *path, bool (*done)(const char *), unsigned secs)
{
	char *out = NULL;

	for (unsigned i = 0; i < harness_wait_s(secs) * 4; i++) {
		/* Ask before reading: what a VMM that ended wrote is all in the file by then. */
		bool ended = vmm_ended(pid);

		free(out);
		out = slurp(path);
		if (done(out) || ended)
			return out;
		usleep(250000);
	}
	return out;
}

/* The last n bytes of a console, for a failure message. */
static const char *tail(const char *out, size_t n)
{
	size_t len = strlen(out);

	return len > n ? out + len - n : out;
}

/* The exit status of pid once it ends by itself, or -1 if it still runs after secs. */
static int wait_exit(pid_t pid, unsigned secs)
{
	for (unsigned i = 0; i < harness_wait_s(secs) * 10 && !vmm_ended(pid); i++)
		usleep(100000);
	if (vmm_status < 0)
		return -1;
	return WIFEXITED(vmm_status) ? WEXITSTATUS(vmm_status) : 128 + WTERMSIG(vmm_status);
}

static bool init_seen(const char *out)
{
	return strstr(out, INIT_LINE) != NULL;
}

/* Our small kernel, which make test builds (make guest-kernel), or NULL. */
static char *find_guest_kernel(void)
{
	const char *path = harness_build_path("linux/guest-bzImage");

	return access(path, R_OK) == 0 ? strdup(path) : NULL;
}

/*
 * The kernel to boot (Debian's, or with small our own), and a new empty file
 * at path for its console; skips the test without them.
 */
static char *kernel_and_console(char *path, bool small)
{
	char *kernel = small ? find_guest_kernel() : linux_debian_kernel();
	int fd;

	SKIP_WITHOUT_KVM();
	if (!kernel)
		cr_skip_test("skipped: %s", small ? "no build/linux/guest-bzImage (make guest-kernel)"
				   : "no /boot/vmlinuz-* (make test installs linux-image-amd64)");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	return kernel;
}

/* Boot a kernel to the initramfs's init (on PVM, its early console) and check what it printed. */
static void boot_to_init(bool small)
{
	char path[] = "/tmp/vm-fork-linux-XXXXXX", e820[BOOT_E820_MAX][128];
	char *kernel = kernel_and_console(path, small), *out;
	bool hw = !harness_slow_host();
	pid_t pid;
	int n;

	pid = start_linux(kernel, path, NULL);
	out = wait_for(pid, path, hw ? init_seen : early_boot_seen, 120);
	if (hw && init_seen(out)) {
		/* init's reboot -f resets the machine: vm-fork ends by itself, status 0. */
		int status = wait_exit(pid, 30);

		cr_expect_eq(status, 0, "Linux's reboot -f: vm-fork %s %d", status < 0 ?
			     "still ran after 30 s, status" : "exited with", status);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(path);
	cr_log_info("Linux console:\n%.4000s", out);
	cr_expect(strstr(out, "Linux version") != NULL, "no 'Linux version' banner");
	cr_expect(cmdline_seen(out), "no 'Command line: ' with exactly our command line");
	n = expected_e820(e820, BOOT_E820_MAX);
	for (int i = 0; i < n; i++)
		cr_expect(strstr(out, e820[i]) != NULL, "missing e820 line '%s'", e820[i]);
	if (hw)
		cr_expect(init_seen(out), "hardware KVM: the initramfs's init line never came");
	free(out);
	free(kernel);
}

Test(linux_boot, debian_kernel, .timeout = 150)
{
	boot_to_init(false);
}

Test(linux_boot, small_kernel, .timeout = 150)
{
	boot_to_init(true);
}

/* Kernel log lines (they start with "[ "), the sign a kernel is running. */
static unsigned kernel_lines(const char *out)
{
	unsigned n = 0;

	for (const char *p = out; (p = strstr(p, "\n[ ")); p++)
		n++;
	return n;
}

static bool clone_booting(const char *out)
{
	return kernel_lines(out) >= 3;
}

static unsigned root_lines_at_fork;

static bool root_went_on(const char *out)
{
	return kernel_lines(out) > root_lines_at_fork;
}

/*
 * Whether the VMM's 2 warm shells are ready and hold its RAM (GET /v1/info,
 * with curl): they are made at idle priority, so on a busy host that can
 * take a while after the guest started.
 */
static bool shells_ready(const char *api, unsigned secs)
{
	char cmd[256], buf[512];

	snprintf(cmd, sizeof(cmd), "curl -s --unix-socket %s http://localhost/v1/info", api);
	for (unsigned i = 0; i < secs * 4; i++) {
		FILE *p = popen(cmd, "r");
		size_t n = p ? fread(buf, 1, sizeof(buf) - 1, p) : 0;

		if (p)
			pclose(p);
		buf[n] = 0;
		if (strstr(buf, "\"ready\":2,\"prepared\":2"))
			return true;
		usleep(250000);
	}
	return false;
}

/* vm-fork CMD --api api --id 0, which must succeed; what it printed in out. */
static void cli_on_vm0(const char *cmd, const char *api, char *out, size_t len)
{
	cr_assert_eq(harness_run_cli((char *const[]){ "vm-fork", (char *)cmd, "--api", (char *)api,
						      "--id", "0", NULL }, out, len, 30),
		     0, "vm-fork %s: %s", cmd, out);
}

/*
 * Linux forked mid-boot through the API, with warm shells (so the parent moves
 * into one): the clone's own console goes on with the boot, and so does the
 * parent's. On hardware KVM both reach the initramfs's init. The guest is
 * paused at its early lines until the shells are ready: they are made at idle
 * priority, and on one emulated CPU a booting guest starves them until it has
 * reached init and rebooted (Debian's kernel, which takes longer than ours).
 */
Test(linux_boot, forked_mid_boot_both_go_on, .timeout = 150)
{
	char path[] = "/tmp/vm-fork-linux-XXXXXX", api[64], clone_log[96], cli_out[4096];
	char *kernel = kernel_and_console(path, false), *out, *clone, ignored[1024];
	bool hw = !harness_slow_host();
	pid_t pid;

	snprintf(api, sizeof(api), "%s.sock", path);
	snprintf(clone_log, sizeof(clone_log), "%s.clone-1.log", api);
	pid = start_linux(kernel, path, api);
	out = wait_for(pid, path, early_boot_seen, 120);
	cr_assert(early_boot_seen(out), "Linux never reached its e820 lines:\n%.3000s", out);
	cli_on_vm0("pause", api, ignored, sizeof(ignored));
	cr_assert(shells_ready(api, harness_wait_s(60)), "the warm shells never got ready");
	cli_on_vm0("fork", api, cli_out, sizeof(cli_out));
	cr_expect(strstr(cli_out, "parent moved into a shell"), "%s", cli_out);
	cli_on_vm0("resume", api, ignored, sizeof(ignored));
	root_lines_at_fork = kernel_lines(out);
	clone = wait_for(pid, clone_log, hw ? init_seen : clone_booting, 180);
	free(out);
	out = wait_for(pid, path, hw ? init_seen : root_went_on, 120);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	cr_log_info("fork: %sclone console:\n%.2000s", cli_out, clone);
	cr_expect(hw ? init_seen(clone) : clone_booting(clone),
		  "the clone's kernel did not go on (VMM wait status %d); its console ends:\n%s",
		  vmm_status, tail(clone, 1500));
	cr_expect(hw ? init_seen(out) : root_went_on(out),
		  "the parent's kernel did not go on (VMM wait status %d); its console ends:\n%s",
		  vmm_status, tail(out, 1500));
	unlink(path);
	unlink(clone_log);
	free(clone);
	free(out);
	free(kernel);
}
