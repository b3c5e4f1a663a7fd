/*
 * Linux (our small kernel, and Debian's) on vm-fork's ACPI tables: it boots with them and
 * says nothing against them, finds COM1 and the GED in the DSDT, and powers
 * off (S5 through the sleep control register) and resets (the FADT's reset
 * register with reboot=a, the i8042 with reboot=k) with vm-fork ending by
 * itself, status 0. The VMM runs with -vv so its log says which device
 * stopped the machine.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

#define ACPI_CMDLINE "console=ttyS0 panic=-1 i8042.noaux initcall_blacklist=cmos_init"
#define ACPI_RESET_LOG "acpi-pm: the guest wrote the ACPI reset register"
#define ACPI_S5_LOG "acpi-pm: the guest entered S5"

/* What Linux found through ACPI, then the action ("poweroff" or "reboot"). */
static const char init_fmt[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sysfs /sys\n"
	"echo \"vm-fork-acpi: devices $(ls /sys/bus/acpi/devices | tr '\\n' ' ')\"\n"
	"echo \"vm-fork-acpi: pnp $(cat /sys/bus/pnp/devices/*/id | tr '\\n' ' ')\"\n"
	"echo \"vm-fork-acpi: ged irqs $(grep -c ACPI:Ged /proc/interrupts)\"\n"
	"%s -f\n";

struct acpi_boot {
	int status;        /* vm-fork's exit status, -1 when it ran out of time */
	char *console;     /* the guest's console */
	char vmm[64 * 1024]; /* vm-fork's own messages */
};

static void make_initrd(const char *initrd, const char *action)
{
	char script[96], cmd[512];
	FILE *f;

	snprintf(script, sizeof(script), "%s.init", initrd);
	f = fopen(script, "w");
	cr_assert(f && fprintf(f, init_fmt, action) > 0 && fclose(f) == 0);
	snprintf(cmd, sizeof(cmd), "%s/tools/make-initramfs.sh %s %s", VMFORK_SRC_DIR, initrd,
		 script);
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
	unlink(script);
}


/* Boot kernel (ours, or NULL for Debian's) to init, which runs `action -f`. */
static void boot(struct acpi_boot *b, bool stock, const char *action, const char *reboot_mode)
{
	char *kernel = stock ? linux_debian_kernel() : linux_small_kernel();
	char console[] = "/tmp/vm-fork-acpi-XXXXXX";
	char initrd[64], console_opt[64], cmdline[256];
	int fd;

	SKIP_WITHOUT_KVM();
	if (!kernel)
		cr_skip_test("skipped: no /boot/vmlinuz-* (make test installs linux-image-amd64)");
	fd = mkstemp(console);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(initrd, sizeof(initrd), "%s.cpio.gz", console);
	snprintf(console_opt, sizeof(console_opt), "file:%s", console);
	snprintf(cmdline, sizeof(cmdline), "%s reboot=%s", ACPI_CMDLINE, reboot_mode);
	make_initrd(initrd, action);
	b->status = harness_run_cli((char *const[]){ "vm-fork", "run", "-vv", "--kernel", kernel,
						     "--initrd", initrd, "--mem", "256M",
						     "--cmdline", cmdline, "--console", console_opt,
						     NULL },
				    b->vmm, sizeof(b->vmm), 120);
	b->console = linux_slurp(console);
	unlink(console);
	unlink(initrd);
	free(kernel);
	cr_log_info("console:\n%s", b->console);
}

static const char *tail(const char *s)
{
	size_t n = strlen(s);

	return n > 3000 ? s + n - 3000 : s;
}

/* Init ran, and the kernel said nothing against the tables or the AML. */
static void expect_clean_boot(const struct acpi_boot *b)
{
	static const char *const complaints[] = {
		"ACPI Error", "ACPI BIOS Error", "ACPI Warning", "ACPI BIOS Warning",
		"ACPI Exception", "cannot locate _EVT", "acpi-ged", "i8042: probe", NULL,
	};

	cr_assert(strstr(b->console, "vm-fork-acpi: devices"),
		  "init never ran (status %d); the console ends:\n%s", b->status, tail(b->console));
	for (unsigned i = 0; complaints[i]; i++) {
		const char *line = strstr(b->console, complaints[i]);

		cr_expect(!line, "Linux: %.200s", line);
	}
}

/* What the poweroff boot must show of ACPI. */
static void boot_and_power_off(bool stock)
{
	static struct acpi_boot b;

	boot(&b, stock, "poweroff", "k");
	expect_clean_boot(&b);
	cr_expect(strstr(b.console, "ACPI0013:00"), "no GED among the ACPI devices");
	cr_expect(strstr(b.console, "PNP0501:00"), "no COM1 among the ACPI devices");
	cr_expect(strstr(b.console, "vm-fork-acpi: pnp PNP0501"), "8250_pnp did not see COM1");
	cr_expect(strstr(b.console, "vm-fork-acpi: ged irqs 1"), "the GED's interrupt is not requested");
	cr_expect(strstr(b.console, "reboot: Power down"), "Linux did not power down");
	cr_assert_eq(b.status, 0, "poweroff -f: vm-fork %s %d; its messages end:\n%s",
		     b.status < 0 ? "still ran, status" : "exited with", b.status, tail(b.vmm));
	cr_expect(strstr(b.vmm, ACPI_S5_LOG), "not stopped by S5:\n%s", tail(b.vmm));
	free(b.console);
}

Test(linux_acpi, boots_clean_and_powers_off, .timeout = 150)
{
	boot_and_power_off(false);
}

Test(linux_acpi, stock_kernel_boots_clean_and_powers_off, .timeout = 150)
{
	boot_and_power_off(true);
}

Test(linux_acpi, reboot_through_the_acpi_reset_register, .timeout = 150)
{
	static struct acpi_boot b;

	boot(&b, false, "reboot", "a");
	expect_clean_boot(&b);
	cr_assert_eq(b.status, 0, "reboot=a: vm-fork %s %d; its messages end:\n%s",
		     b.status < 0 ? "still ran, status" : "exited with", b.status, tail(b.vmm));
	cr_expect(strstr(b.vmm, ACPI_RESET_LOG), "not reset by the ACPI register:\n%s", tail(b.vmm));
	free(b.console);
}

Test(linux_acpi, reboot_through_the_i8042, .timeout = 150)
{
	static struct acpi_boot b;

	boot(&b, false, "reboot", "k");
	expect_clean_boot(&b);
	cr_assert_eq(b.status, 0, "reboot=k: vm-fork %s %d; its messages end:\n%s",
		     b.status < 0 ? "still ran, status" : "exited with", b.status, tail(b.vmm));
	cr_expect(!strstr(b.vmm, ACPI_RESET_LOG), "reboot=k went through ACPI");
	cr_expect(strstr(b.vmm, "guest reset"), "%s", tail(b.vmm));
	free(b.console);
}

/*
 * Every second, how often the GED interrupted (its line in /proc/interrupts),
 * once the CRNG is ready: a read of /dev/random waits for it (and hastens it),
 * and Linux reseeds on a VM fork only a CRNG that is ready.
 */
static const char ged_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t devtmpfs dev /dev\n"
	"head -c 1 /dev/random >/dev/null\n"
	"while :; do\n"
	"  echo \"ged irq count: $(grep ACPI:Ged /proc/interrupts | tr -s ' ' | cut -d ' ' -f 3)\"\n"
	"  sleep 1\n"
	"done\n";

static bool ged_counted(const char *out)
{
	return strstr(out, "ged irq count: 0") != NULL;
}

static bool ged_fired(const char *out)
{
	return strstr(out, "ged irq count: 1") != NULL;
}

/*
 * A clone takes a new VMGenID before it runs (devices/vmgenid.c), and the
 * GED tells it: its interrupt, _EVT reading the event register, Notify to
 * \_SB.VGEN, and Linux's VMGenID driver reseeding the CRNG, which it says.
 */
Test(linux_acpi, a_clone_hears_the_ged, .timeout = 150)
{
	struct linux_vm vm;
	char *kernel = linux_small_kernel(), *out, path[128], cli[4096];

	linux_start(&vm, kernel, ged_init, NULL, NULL);
	out = linux_wait_for(&vm, vm.console, ged_counted, 120);
	cr_assert(ged_counted(out), "no GED interrupt line before the fork:\n%s", tail(out));
	free(out);
	linux_cli(&vm, "pause", cli, sizeof(cli), NULL);
	linux_cli(&vm, "fork", cli, sizeof(cli), NULL);
	linux_console_path(&vm, 1, path, sizeof(path));
	out = linux_wait_for(&vm, path, ged_fired, 120);
	cr_log_info("clone console:\n%s", tail(out));
	cr_expect(ged_fired(out), "the clone's GED never interrupted:\n%s", tail(out));
	cr_expect(strstr(out, "crng reseeded due to virtual machine fork"),
		  "the clone's VMGenID driver did not reseed:\n%s", tail(out));
	cr_expect(!strstr(out, "ACPI Error"), "%s", strstr(out, "ACPI Error"));
	free(out);
	linux_stop(&vm);
	free(kernel);
}
