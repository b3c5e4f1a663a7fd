/*
 * Booting firmware (vm-fork run --firmware, issue 12's first step): Debian's
 * SeaBIOS starts at its reset vector in real mode and prints its banner
 * through the debug port (0x402), which reaches our console.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/bus.h"
#include "devices/debugcon.h"
#include "tests/harness.h"

#define SEABIOS "/usr/share/seabios/bios-microvm.bin"

static bool file_has(const char *path, const char *text)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

Test(firmware, seabios_prints_its_banner_on_our_console, .timeout = 120)
{
	char log[] = "/tmp/vmfork-fw-XXXXXX", spec[64];
	unsigned bound = harness_wait_s(30) * 100;
	int fd;
	pid_t pid;

	SKIP_WITHOUT_KVM();
	cr_assert_eq(access(SEABIOS, R_OK), 0, "Debian's seabios package is a dependency");
	fd = mkstemp(log);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(spec, sizeof(spec), "file:%s", log);
	pid = fork();
	if (pid == 0) {
		execl(harness_build_path("vm-fork"), "vm-fork", "run", "--firmware", "seabios",
		      "--mem", "64M", "--console", spec, (char *)NULL);
		_exit(127);
	}
	/* Until the firmware says what it found (its console is the report), or the bound. */
	for (unsigned i = 0; i < bound && !file_has(log, "non-PCI system"); i++) {
		struct pollfd none = { .fd = -1 };

		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		poll(&none, 0, 10);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	cr_expect(file_has(log, "SeaBIOS (version "), "no SeaBIOS banner");
	/* It ran on from there: it found KVM, its RAM and no PCI, as a microvm has none. */
	cr_expect(file_has(log, "Running on KVM"), "SeaBIOS did not see KVM");
	cr_expect(file_has(log, "Detected non-PCI system"), "SeaBIOS stopped before its PCI probe");
	unlink(log);
}

/* The port is QEMU's isa-debugcon: 0xe9 on a read while on, nothing while off. */
Test(firmware, the_debug_port_answers_only_when_on)
{
	struct device_host host = { 0 };
	struct bus bus;
	void *dev;
	uint8_t b = 0;

	bus_init(&bus);
	cr_assert_eq(debugcon_device.create(&dev, &bus, &host), 0);
	bus_access(&bus, BUS_PIO, DEBUGCON_PORT, &b, 1, false);
	cr_expect_eq(b, 0xff, "off: no device there");
	cr_assert_eq(debugcon_device.configure(dev, "on"), 0);
	bus_access(&bus, BUS_PIO, DEBUGCON_PORT, &b, 1, false);
	cr_expect_eq(b, DEBUGCON_READBACK);
	debugcon_device.destroy(dev);
}
