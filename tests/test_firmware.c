/*
 * Booting firmware (vm-fork run --firmware, issue 12's first step): Debian's
 * SeaBIOS starts at its reset vector in real mode and prints its banner
 * through the debug port (0x402), which reaches our console.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/memory.h"
#include "devices/cmos.h"
#include "devices/debugcon.h"
#include "devices/fw_cfg.h"
#include "tests/harness.h"

#define SEABIOS "/usr/share/seabios/bios-microvm.bin"

/* run --firmware seabios [--disk disk]: the consoles and the debug port's file in dir. */
static int run_firmware(const char *dir, const char *disk, char *out, size_t size)
{
	char console[128], clones[128], debug[128];
	char *argv[] = { "vm-fork", "run", "--firmware", "seabios", "--mem", "64M", "--console",
			 console, "--clone-console", clones, "--debugcon", debug, "--disk",
			 (char *)disk, NULL };

	snprintf(console, sizeof(console), "file:%s/console.log", dir);
	snprintf(clones, sizeof(clones), "file:%s/clone-%%u.log", dir);
	snprintf(debug, sizeof(debug), "%s/debug.log", dir);
	if (!disk)
		argv[12] = NULL;
	return harness_run_cli(argv, out, size, 60);
}

static void in_log(const char *dir, const char *name, const char *text)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_expect(harness_file_has(path, text), "%s does not say '%s'", name, text);
}

static void remove_dir(const char *dir)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/*
 * With no disk, SeaBIOS prints its banner on COM1 and its trace (the memory
 * map we gave it through fw_cfg) on the debug port, tries the floppy and the
 * hard disk, says "No bootable device.", and reboots through port 0xcf9:
 * vm-fork ends by itself (a reset: status 0), never hangs.
 */
Test(firmware, seabios_boots_to_no_bootable_device_and_vm_fork_ends, .timeout = 200)
{
	char dir[] = "/tmp/vmfork-fw-XXXXXX", out[4096];

	SKIP_WITHOUT_KVM();
	cr_assert_eq(access(SEABIOS, R_OK), 0, "Debian's seabios package is a dependency");
	cr_assert(mkdtemp(dir));
	cr_expect_eq(run_firmware(dir, NULL, out, sizeof(out)), 0, "vm-fork: %s", out);
	in_log(dir, "console.log", "SeaBIOS (version ");
	in_log(dir, "debug.log", "SeaBIOS (version ");
	in_log(dir, "debug.log", "Running on KVM");
	/* Our fw_cfg's etc/e820: RAM from 1 MiB to the 64 MiB we gave. */
	in_log(dir, "debug.log", "qemu/e820: addr 0x0000000000100000 len 0x0000000003f00000 [RAM]");
	in_log(dir, "debug.log", "No bootable device.");
	in_log(dir, "debug.log", "Rebooting.");
	remove_dir(dir);
}

/* dir/disk.img: 1 MiB, with the boot sector (or zeros: no boot signature) in front. */
static void make_disk(const char *dir, bool bootable, char *disk, size_t size)
{
	char cmd[512];

	snprintf(disk, size, "%s/disk.img", dir);
	snprintf(cmd, sizeof(cmd), "truncate -s 1M %s%s%s%s", disk, bootable ? " && dd status=none "
		 "conv=notrunc of=" : "", bootable ? disk : "", bootable ? " if=" : "");
	if (bootable)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s",
			 harness_build_path("guest/bootsector.bin"));
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/*
 * SeaBIOS finds the disk through the DSDT we give it over fw_cfg's table
 * loader, loads the boot sector, and the boot sector forks the VM through the
 * control device: the parent and its clone each report, on their own consoles.
 */
Test(firmware, a_boot_sector_from_a_disk_forks_and_both_copies_report, .timeout = 200)
{
	char dir[] = "/tmp/vmfork-fw-XXXXXX", disk[64], out[4096];

	SKIP_WITHOUT_KVM();
	cr_assert(mkdtemp(dir));
	make_disk(dir, true, disk, sizeof(disk));
	cr_expect_eq(run_firmware(dir, disk, out, sizeof(out)), 0, "vm-fork: %s", out);
	in_log(dir, "debug.log", "ACPI: virtio-mmio device VR");
	in_log(dir, "debug.log", "Booting from Hard Disk...");
	in_log(dir, "console.log", "vm-fork boot sector: loaded by the BIOS");
	in_log(dir, "console.log", "boot sector: clone 0 forked, result 1");
	in_log(dir, "clone-1.log", "boot sector: clone 1 forked, result 0");
	remove_dir(dir);
}

/* A disk without a boot signature: SeaBIOS's own "No bootable device.", and vm-fork ends. */
Test(firmware, a_disk_that_does_not_boot_ends_the_vm, .timeout = 200)
{
	char dir[] = "/tmp/vmfork-fw-XXXXXX", disk[64], out[4096];

	SKIP_WITHOUT_KVM();
	cr_assert(mkdtemp(dir));
	make_disk(dir, false, disk, sizeof(disk));
	cr_expect_eq(run_firmware(dir, disk, out, sizeof(out)), 0, "vm-fork: %s", out);
	in_log(dir, "debug.log", "virtio-blk-mmio");
	in_log(dir, "debug.log", "Boot failed: not a bootable disk");
	in_log(dir, "debug.log", "No bootable device.");
	remove_dir(dir);
}

/*
 * Milestones of SeaBIOS's trace in its 32-bit POST, in order. From its option
 * ROM scan on, it is at the disk within milliseconds under TCG, and the VM
 * may be gone before a fork lands.
 */
static const char *const milestones[] = {
	"Found QEMU fw_cfg", "Relocating init", "Detected non-PCI system",
};
#define MILESTONES (sizeof(milestones) / sizeof(milestones[0]))

/* Wait (polling the debug port's file, never sleeping blind) until SeaBIOS has said text. */
static bool wait_trace(const char *dir, const char *text, pid_t vmm)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/debug.log", dir);
	return harness_wait_file(path, text, vmm, 60);
}

/* PUT path with body on the API at dir/api.sock: the HTTP status. */
static long api_put(const char *dir, const char *path, const char *body)
{
	char sock[96];

	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	return harness_api_put(sock, path, body);
}

/* vm-fork run --firmware seabios with a bootable disk and the API, in dir; its pid. */
static pid_t start_firmware_vm(const char *dir)
{
	char disk[64], console[96], sock[96], debug[96];
	pid_t vmm;

	make_disk(dir, true, disk, sizeof(disk));
	snprintf(console, sizeof(console), "file:%s/console.log", dir);
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	snprintf(debug, sizeof(debug), "%s/debug.log", dir);
	vmm = fork();
	cr_assert(vmm >= 0);
	if (vmm == 0) {
		execl(harness_build_path("vm-fork"), "vm-fork", "run", "--firmware", "seabios",
		      "--mem", "64M", "--disk", disk, "--console", console, "--api", sock,
		      "--debugcon", debug, (char *)NULL);
		_exit(127);
	}
	return vmm;
}

/* Wait for a random milestone (seeded) plus up to 1 ms: a moment inside SeaBIOS's POST. */
static void wait_random_moment(const char *dir, pid_t vmm)
{
	unsigned seed = harness_seed(), which = seed % MILESTONES, extra_us = seed / MILESTONES % 1000;

	harness_note("at '%s' + %u us", milestones[which], extra_us);
	cr_assert(wait_trace(dir, milestones[which], vmm), "SeaBIOS never said '%s'",
		  milestones[which]);
	usleep(extra_us);
}

/*
 * A fork while SeaBIOS runs, at a random moment of its POST (the fork's pause
 * lands where it lands): the parent and its clone both go on through the
 * firmware, boot the disk, and their boot sectors fork again (clones 2 and 3).
 * A clone's fw_cfg is rebuilt from its machine, so one made before SeaBIOS
 * read its tables reads the same ones.
 */
Test(firmware, a_fork_mid_firmware_and_both_boot_the_disk, .timeout = 200)
{
	char dir[] = "/tmp/vmfork-fw-XXXXXX";
	int status;
	pid_t vmm;

	SKIP_WITHOUT_KVM();
	cr_assert(mkdtemp(dir));
	vmm = start_firmware_vm(dir);
	wait_random_moment(dir, vmm);
	cr_expect_eq(api_put(dir, "/v1/vms/0/fork", "{}"), 200, "the fork was refused");
	status = harness_wait_pid(vmm, 60);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vm-fork ended with %#x", status);
	in_log(dir, "console.log", "vm-fork boot sector: loaded by the BIOS");
	in_log(dir, "console.log", "boot sector: clone 0 forked, result 1");
	/* Its greeting may be split by the fork; its own fork is all its own. */
	in_log(dir, "api.sock.clone-1.log", "boot sector: clone 1 forked, result 1");
	remove_dir(dir);
}

/*
 * A snapshot at a random moment of SeaBIOS's POST: the VM goes on and boots;
 * restored, the snapshot goes on from that moment too, boots the same disk
 * (its copy-on-write overlay) and forks.
 */
Test(firmware, a_snapshot_mid_firmware_restores_and_boots_the_disk, .timeout = 200)
{
	char dir[] = "/tmp/vmfork-fw-XXXXXX", body[96], snap[64], state[96], console[96], clones[96];
	char out[4096];
	char *argv[] = { "vm-fork", "restore", snap, "--console", console, "--clone-console", clones,
			 NULL };
	int status;
	pid_t vmm;

	SKIP_WITHOUT_KVM();
	cr_assert(mkdtemp(dir));
	vmm = start_firmware_vm(dir);
	wait_random_moment(dir, vmm);
	snprintf(snap, sizeof(snap), "%s/snap", dir);
	snprintf(body, sizeof(body), "{\"dir\": \"%s\"}", snap);
	cr_expect_eq(api_put(dir, "/v1/vms/0/snapshot", body), 202, "the snapshot was refused");
	/* Written while the VM runs on, under a temporary name renamed to snap at the end. */
	snprintf(state, sizeof(state), "%s/state.dtb", snap);
	for (unsigned i = 0; i < harness_wait_s(30) * 100 && access(state, F_OK); i++)
		usleep(10000);
	status = harness_wait_pid(vmm, 60);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "vm-fork ended with %#x", status);
	in_log(dir, "console.log", "boot sector: clone 0 forked, result 1");
	snprintf(console, sizeof(console), "file:%s/restored.log", dir);
	snprintf(clones, sizeof(clones), "file:%s/restored-%%u.log", dir);
	cr_expect_eq(harness_run_cli(argv, out, sizeof(out), 60), 0, "vm-fork restore: %s", out);
	in_log(dir, "restored.log", "boot sector: clone 0 forked, result 1");
	in_log(dir, "restored-1.log", "boot sector: clone 1 forked, result 0");
	remove_dir(dir);
}

/* fw_cfg as a hostile guest uses it: every bad access refused, counted, and harmless. */
Test(firmware, fw_cfg_refuses_bad_selectors_and_reads_past_an_item)
{
	struct device_host host = { 0 };
	struct bus bus;
	void *dev;
	uint8_t b[8], sel[2] = { FW_CFG_SIGNATURE, 0 }, bad[2] = { 0xff, 0x7f };
	uint64_t refused;

	bus_init(&bus);
	cr_assert_eq(fw_cfg_device.create(&dev, &bus, &host), 0);
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_DATA, b, 1, false);
	cr_expect_eq(b[0], 0xff, "off: no device there");
	cr_assert_eq(fw_cfg_device.configure(dev, "on"), 0);
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_SEL, sel, 2, true);
	for (int i = 0; i < 6; i++)
		bus_access(&bus, BUS_PIO, FW_CFG_PORT_DATA, &b[i], 1, false);
	cr_expect_eq(memcmp(b, "QEMU\0\0", 6), 0, "the signature, then zeros past its end");
	refused = fw_cfg_refused(dev);
	cr_expect_eq(refused, 1, "one read past the end counted");
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_SEL, bad, 2, true);
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_DATA, b, 1, false);
	cr_expect_eq(b[0], 0);
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_SEL, b, 1, false); /* the selector is write-only */
	cr_expect_eq(fw_cfg_refused(dev), refused + 2);
	cr_expect_eq(fw_cfg_add_file(dev, "a-name-longer-than-fifty-five-bytes-is-refused-by-fw_cfg",
				     b, 1), -ENAMETOOLONG);
	cr_expect_eq(fw_cfg_set(dev, FW_CFG_FILE_DIR, b, 1), -EINVAL, "the directory is ours");
	fw_cfg_device.destroy(dev);
}

/* A file's directory entry: big-endian size and selector, its name; its bytes at that selector. */
Test(firmware, fw_cfg_lists_its_files)
{
	struct device_host host = { 0 };
	struct bus bus;
	void *dev;
	uint8_t dir[4 + 64], sel[2] = { FW_CFG_FILE_DIR, 0 }, data[3];

	bus_init(&bus);
	cr_assert_eq(fw_cfg_device.create(&dev, &bus, &host), 0);
	cr_assert_eq(fw_cfg_device.configure(dev, "on"), 0);
	cr_assert_eq(fw_cfg_add_file(dev, "etc/x", "abc", 3), 0);
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_SEL, sel, 2, true);
	for (size_t i = 0; i < sizeof(dir); i++)
		bus_access(&bus, BUS_PIO, FW_CFG_PORT_DATA, &dir[i], 1, false);
	cr_expect_eq(dir[3], 1, "one file");
	cr_expect_eq(dir[4 + 3], 3, "its size, big-endian");
	cr_expect_eq(dir[4 + 5], FW_CFG_FILE_FIRST, "its selector, big-endian");
	cr_expect_str_eq((char *)dir + 4 + 8, "etc/x");
	sel[0] = FW_CFG_FILE_FIRST;
	bus_access(&bus, BUS_PIO, FW_CFG_PORT_SEL, sel, 2, true);
	for (size_t i = 0; i < sizeof(data); i++)
		bus_access(&bus, BUS_PIO, FW_CFG_PORT_DATA, &data[i], 1, false);
	cr_expect_eq(memcmp(data, "abc", 3), 0);
	fw_cfg_device.destroy(dev);
}

/* Write the descriptor {control, length, address} at gpa and start it through 0x514/0x518. */
static uint32_t dma(struct bus *bus, struct guest_mem *mem, uint64_t gpa, uint32_t control,
		    uint32_t len, uint64_t address)
{
	uint32_t d[4] = { __builtin_bswap32(control), __builtin_bswap32(len),
			  __builtin_bswap32((uint32_t)(address >> 32)),
			  __builtin_bswap32((uint32_t)address) };
	uint32_t high = __builtin_bswap32((uint32_t)(gpa >> 32)), low = __builtin_bswap32((uint32_t)gpa);

	guest_write(mem, gpa, d, sizeof(d));
	bus_access(bus, BUS_PIO, FW_CFG_PORT_DMA, (uint8_t *)&high, 4, true);
	bus_access(bus, BUS_PIO, FW_CFG_PORT_DMA + 4, (uint8_t *)&low, 4, true);
	guest_read(mem, gpa, d, 4);
	return __builtin_bswap32(d[0]);
}

/*
 * DMA as SeaBIOS and linuxboot use it (select + read, skip), and as a hostile
 * guest might: a buffer or a descriptor outside RAM, a write, a read past the
 * item. Each bad one ends in ERROR (or, with no descriptor to answer in, not
 * at all), is counted, and touches nothing outside RAM.
 */
Test(firmware, fw_cfg_dma_reads_and_refuses_what_is_outside_ram)
{
	struct guest_mem mem;
	struct device_host host = { .mem = &mem };
	struct bus bus;
	void *dev;
	char buf[8] = { 0 };
	uint64_t refused;

	cr_assert_eq(guest_mem_create(&mem, 16 * MiB, NULL), 0);
	bus_init(&bus);
	cr_assert_eq(fw_cfg_device.create(&dev, &bus, &host), 0);
	cr_assert_eq(fw_cfg_device.configure(dev, "on"), 0);
	cr_assert_eq(fw_cfg_add_file(dev, "etc/x", "abcdef", 6), 0);
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_FILE_FIRST << 16 |
			 FW_CFG_DMA_READ, 2, 0x2000), 0, "a read ends with control 0");
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_SKIP, 1, 0), 0);
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_READ, 3, 0x2002), 0);
	guest_read(&mem, 0x2000, buf, 5);
	cr_expect_str_eq(buf, "abdef", "select, read 2, skip 1, read 3 from there");
	refused = fw_cfg_refused(dev);
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_READ, 8, 0x3000), 0,
		     "past the item: zeros, not an error");
	cr_expect_eq(fw_cfg_refused(dev), refused + 1, "but counted");
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_SELECT | FW_CFG_FILE_FIRST << 16 |
			 FW_CFG_DMA_READ, 6, 16 * MiB - 2), FW_CFG_DMA_ERROR, "a buffer past RAM");
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_READ, 4, 0xfee00000ULL), FW_CFG_DMA_ERROR);
	cr_expect_eq(dma(&bus, &mem, 0x1000, FW_CFG_DMA_WRITE, 4, 0x2000), FW_CFG_DMA_ERROR,
		     "fw_cfg takes no writes");
	refused = fw_cfg_refused(dev);
	dma(&bus, &mem, 1ULL << 40, FW_CFG_DMA_READ, 4, 0x2000); /* no descriptor there */
	cr_expect_eq(fw_cfg_refused(dev), refused + 1, "a descriptor outside RAM is counted");
	fw_cfg_device.destroy(dev);
	guest_mem_destroy(&mem);
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
	cr_assert_lt(debugcon_device.configure(dev, "/nonexistent/debugcon.log"), 0);
	cr_assert_eq(debugcon_device.configure(dev, "/dev/null"), 0);
	bus_access(&bus, BUS_PIO, DEBUGCON_PORT, &b, 1, false);
	cr_expect_eq(b, DEBUGCON_READBACK);
	bus_access(&bus, BUS_PIO, DEBUGCON_PORT, &b, 1, true);
	debugcon_device.destroy(dev);
}

static uint8_t cmos_at(struct bus *bus, uint8_t index)
{
	uint8_t v = 0xaa;

	bus_access(bus, BUS_PIO, CMOS_PORT_INDEX, &index, 1, true);
	bus_access(bus, BUS_PIO, CMOS_PORT_DATA, &v, 1, false);
	return v;
}

static int from_bcd(uint8_t v)
{
	cr_expect((v & 0xf) <= 9 && (v >> 4) <= 9, "not BCD: %#x", v);
	return (v >> 4) * 10 + (v & 0xf);
}

/* The RTC tells the host's time; NVRAM holds the machine; the guest writes only NVRAM. */
Test(firmware, cmos_has_the_clock_and_the_machine)
{
	struct device_host host = { 0 };
	uint8_t state[CMOS_SIZE + 1], v = 0x5a, idx;
	struct bus bus;
	time_t now = time(NULL);
	struct tm tm;
	void *dev;

	gmtime_r(&now, &tm);
	bus_init(&bus);
	cr_assert_eq(cmos_device.create(&dev, &bus, &host), 0);
	cr_expect_eq(cmos_at(&bus, 0x0a), 0xff, "off: no device there");
	cr_assert_eq(cmos_device.configure(dev, "on"), 0);
	cmos_set_machine(dev, 64 << 20, 0, 2);
	cr_expect_eq(from_bcd(cmos_at(&bus, 0x09)), tm.tm_year % 100);
	cr_expect_eq(from_bcd(cmos_at(&bus, 0x32)), 19 + tm.tm_year / 100);
	cr_expect_lt(from_bcd(cmos_at(&bus, 0x04)), 24, "24-hour time");
	cr_expect_eq(cmos_at(&bus, 0x0a) & 0x80, 0, "never an update in progress");
	cr_expect_eq(cmos_at(&bus, 0x34) | cmos_at(&bus, 0x35) << 8, 768, "48 MiB above 16 MiB");
	cr_expect_eq(cmos_at(&bus, 0x30) | cmos_at(&bus, 0x31) << 8, 64512, "KiB above 1 MiB");
	cr_expect_eq(cmos_at(&bus, 0x5f), 1, "CPUs - 1");
	/* NMI's bit in the index is ignored; NVRAM keeps a byte; the clock takes none. */
	idx = 0x80 | 0x40;
	bus_access(&bus, BUS_PIO, CMOS_PORT_INDEX, &idx, 1, true);
	bus_access(&bus, BUS_PIO, CMOS_PORT_DATA, &v, 1, true);
	cr_expect_eq(cmos_at(&bus, 0x40), 0x5a);
	idx = 0x09;
	v = 0x99;
	bus_access(&bus, BUS_PIO, CMOS_PORT_INDEX, &idx, 1, true);
	bus_access(&bus, BUS_PIO, CMOS_PORT_DATA, &v, 1, true);
	cr_expect_eq(from_bcd(cmos_at(&bus, 0x09)), tm.tm_year % 100, "the year is the host's");
	/* Its state: the NVRAM and the index, checked on restore. */
	cmos_device.save(dev, state);
	cr_expect_eq(cmos_device.check(state), 0);
	state[CMOS_SIZE] = 0xff;
	cr_expect_eq(cmos_device.check(state), -EINVAL, "an index out of range");
	cmos_device.destroy(dev);
}
