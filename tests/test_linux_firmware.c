/*
 * Linux through firmware (issue 12): a disk image the way a distribution
 * ships one, built here without mounting anything (a FAT file system from
 * mkfs.fat, files put in with mtools, SYSLINUX installed in its boot sector),
 * holds Debian's kernel and our initramfs. SeaBIOS boots the disk, SYSLINUX
 * loads the kernel and the initramfs through the BIOS, and Linux reaches init.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

#define INIT_LINE "vm-fork-init: hello from userspace"
#define CMDLINE   "console=ttyS0 reboot=k panic=-1 i8042.noaux"


static void sh(const char *cmd)
{
	cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* dir/disk.img: 32 MiB of FAT with SYSLINUX, the kernel, the initramfs and syslinux.cfg. */
static void make_syslinux_disk(const char *dir, const char *kernel)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkfs.fat -C disk.img 32768 >/dev/null && "
		 "printf 'DEFAULT linux\\nPROMPT 0\\nTIMEOUT 0\\nLABEL linux\\n  KERNEL vmlinuz\\n"
		 "  APPEND initrd=initrd.gz %s\\n' >syslinux.cfg && "
		 "mcopy -i disk.img %s ::vmlinuz && mcopy -i disk.img %s ::initrd.gz && "
		 "mcopy -i disk.img syslinux.cfg ::syslinux.cfg && syslinux --install disk.img",
		 dir, CMDLINE, kernel, harness_build_path("linux/initramfs.cpio.gz"));
	sh(cmd);
}

/* A test's folder with the SYSLINUX disk image, and its console's paths. */
struct boot_disk {
	char dir[32], disk[64], log[96], console[128];
	char *kernel;
};

/* Debian's kernel on a fresh disk (skips the test without KVM or the kernel). */
static void prepare_disk(struct boot_disk *b)
{
	SKIP_WITHOUT_KVM();
	b->kernel = linux_debian_kernel();
	if (!b->kernel)
		cr_skip_test("skipped: no /boot/vmlinuz-* (make test installs linux-image-amd64)");
	strcpy(b->dir, "/tmp/vmfork-lxfw-XXXXXX");
	cr_assert(mkdtemp(b->dir));
	make_syslinux_disk(b->dir, b->kernel);
	snprintf(b->disk, sizeof(b->disk), "%s/disk.img,ro", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/console.log", b->dir);
	snprintf(b->console, sizeof(b->console), "file:%s", b->log);
}

static void remove_disk(struct boot_disk *b)
{
	char cmd[64];

	free(b->kernel);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", b->dir);
	cr_expect_eq(system(cmd), 0);
}

Test(linux_firmware, a_syslinux_disk_image_boots_debians_kernel_to_init, .timeout = 150)
{
	struct boot_disk b;
	char out[4096];
	char *argv[] = { "vm-fork", "run", "--firmware", "seabios", "--mem", "256M", "--disk", b.disk,
			 "--console", b.console, NULL };

	prepare_disk(&b);
	/* init reboots: the keyboard controller's reset ends vm-fork with 0. */
	cr_expect_eq(harness_run_cli(argv, out, sizeof(out), 120), 0, "vm-fork: %s", out);
	cr_expect(harness_file_has(b.log, "SYSLINUX "), "SYSLINUX never started");
	cr_expect(harness_file_has(b.log, "Loading initrd.gz...ok"), "SYSLINUX did not load the initramfs");
	cr_expect(harness_file_has(b.log, "ACPI: RSDP 0x00000000000F"),
		  "Linux did not find the RSDP in the firmware's F segment");
	cr_expect(harness_file_has(b.log, INIT_LINE), "Linux never reached init");
	remove_disk(&b);
}

/*
 * --kernel with --firmware: SeaBIOS boots QEMU's linuxboot_dma.bin first, which
 * reads our small kernel, the initramfs and the command line from fw_cfg by
 * DMA; Linux gets that command line and reaches init.
 */
Test(linux_firmware, a_kernel_given_to_the_firmware_reaches_init, .timeout = 150)
{
	char dir[] = "/tmp/vmfork-lxfw-XXXXXX", console[128], log[96], out[4096], cmd[64];
	char *kernel = linux_small_kernel();
	char *argv[] = { "vm-fork", "run", "--firmware", "seabios", "--mem", "256M", "--kernel", kernel,
			 "--initrd", (char *)harness_build_path("linux/initramfs.cpio.gz"),
			 "--cmdline", CMDLINE " vmfork.through=firmware", "--console", console, NULL };

	cr_assert(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/console.log", dir);
	snprintf(console, sizeof(console), "file:%s", log);
	argv[9] = strdup(argv[9]); /* the path's buffer is reused */
	cr_expect_eq(harness_run_cli(argv, out, sizeof(out), 120), 0, "vm-fork: %s", out);
	cr_expect(harness_file_has(log, "SeaBIOS (version "), "no SeaBIOS banner");
	cr_expect(harness_file_has(log, "Booting from ROM"), "SeaBIOS did not boot linuxboot_dma.bin");
	cr_expect(harness_file_has(log, "Command line: " CMDLINE " vmfork.through=firmware"),
		  "Linux did not get our command line");
	cr_expect(harness_file_has(log, INIT_LINE), "Linux never reached init");
	free(argv[9]);
	free(kernel);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* Moments on the console of a boot through the firmware: SeaBIOS, SYSLINUX, its loads, Linux. */
static const char *const boot_moments[] = {
	"SeaBIOS (version", "SYSLINUX ", "Loading vmlinuz", "Loading initrd.gz", "Linux version",
	"Freeing unused kernel",
};
#define BOOT_MOMENTS (sizeof(boot_moments) / sizeof(boot_moments[0]))

/*
 * A fork while the firmware, the boot loader or Linux runs (SYSLINUX loads the
 * kernel through the BIOS's disk calls, in real mode), at a random one of
 * their moments plus up to 1 ms: the parent and the clone both boot on, and
 * both reach Linux's init.
 */
Test(linux_firmware, a_fork_mid_boot_and_both_reach_init, .timeout = 150)
{
	struct boot_disk b;
	char sock[96], clone[128];
	unsigned seed = harness_seed(), which = seed % BOOT_MOMENTS, extra_us = seed / BOOT_MOMENTS % 1000;
	int status;
	pid_t vmm;

	prepare_disk(&b);
	snprintf(sock, sizeof(sock), "%s/api.sock", b.dir);
	snprintf(clone, sizeof(clone), "%s.clone-1.log", sock);
	vmm = fork();
	cr_assert(vmm >= 0);
	if (vmm == 0) {
		execl(harness_build_path("vm-fork"), "vm-fork", "run", "--firmware", "seabios", "--mem",
		      "256M", "--disk", b.disk, "--console", b.console, "--api", sock, (char *)NULL);
		_exit(127);
	}
	harness_note("fork at '%s' + %u us", boot_moments[which], extra_us);
	cr_assert(harness_wait_file(b.log, boot_moments[which], vmm, 60), "never saw '%s'",
		  boot_moments[which]);
	usleep(extra_us);
	cr_expect_eq(harness_api_put(sock, "/v1/vms/0/fork", "{}"), 200, "the fork was refused");
	/* Each reboots from init: vm-fork ends once both have. */
	status = harness_wait_pid(vmm, 120);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vm-fork ended with %#x", status);
	cr_expect(harness_file_has(b.log, INIT_LINE), "the parent never reached init");
	cr_expect(harness_file_has(clone, INIT_LINE), "the clone never reached init");
	remove_disk(&b);
}
