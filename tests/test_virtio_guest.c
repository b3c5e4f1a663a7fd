/*
 * A hostile virtio driver (guest/virtio_hostile.c) against each virtio
 * device: random register writes, bad queue setups, garbage descriptor
 * chains on every queue. The VMM must survive, write nothing outside guest
 * RAM, and the device must still serve a proper driver afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/device.h"
#include "devices/ctl_abi.h"
#include "tests/harness.h"

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define DISK_MARK         0x6b736964 /* "disk", the test disk's first bytes */

struct hostile {
	const char *option, *arg;
	unsigned slot, device_id;
};

static void run_hostile(const struct hostile *h, struct guest_result *res)
{
	struct guest_opts o = { .timeout_s = 60 };
	char cmdline[64];
	int index = device_by_option(h->option);

	cr_assert(index >= 0, "no --%s device in the table", h->option);
	snprintf(cmdline, sizeof(cmdline), "seed=%u slot=%u", harness_seed(), h->slot);
	o.cmdline = cmdline;
	o.devices.args[index] = h->arg;
	harness_run_guest("virtio_hostile", &o, res);
	cr_log_info("console:\n%s", res->console);
	cr_assert_eq(res->ret, 0);
	cr_expect_eq(res->reason, VM_STOP_GUEST_EXIT, "stopped by %s",
		     vm_stop_reason_name(res->reason));
	cr_expect_eq(res->status, 0, "the guest saw a check fail (exit %d):\n%s", res->status,
		     res->console);
	cr_assert_eq(res->nreports, 8, "reports: %u", res->nreports);
	cr_expect_eq(res->reports[0], VIRTIO_MMIO_MAGIC);
	cr_expect_eq(res->reports[1], 2, "virtio-mmio version");
	cr_expect_eq(res->reports[2], h->device_id, "--%s's device id", h->option);
	cr_expect_eq(res->reports[3], 0xffffffff, "an empty slot answers like nothing at all");
	cr_expect_eq(res->reports[6], VMFORK_CTL_MAGIC_VALUE,
		     "the control device changed under a chain that pointed at it");
	cr_expect_gt(res->reports[7], 10, "garbage chains sent: %llu",
		     (unsigned long long)res->reports[7]);
}

Test(virtio_guest, hostile_driver_against_rng, .timeout = 120)
{
	static struct guest_result res;
	const struct hostile h = { "rng", "", 0, 4 };

	SKIP_WITHOUT_KVM();
	run_hostile(&h, &res);
	cr_expect_eq(res.reports[4], 64, "the good request after the garbage: used length");
	cr_expect_gt(res.reports[5], 32, "the good request's bytes are not random: %llu nonzero of 64",
		     (unsigned long long)res.reports[5]);
}

Test(virtio_guest, hostile_driver_against_blk, .timeout = 120)
{
	static struct guest_result res;
	char disk[] = "/tmp/vm-fork-hostile-XXXXXX";
	uint32_t mark = DISK_MARK;
	int fd = mkstemp(disk);
	const struct hostile h = { "disk", disk, 1, 2 };

	SKIP_WITHOUT_KVM();
	cr_assert(fd >= 0 && write(fd, &mark, 4) == 4 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	run_hostile(&h, &res);
	cr_expect_eq(res.reports[5], DISK_MARK, "sector 0 read after the garbage: status %llu, %#llx",
		     (unsigned long long)(res.reports[5] >> 32),
		     (unsigned long long)(res.reports[5] & 0xffffffff));
	unlink(disk);
}

Test(virtio_guest, hostile_driver_against_vsock, .timeout = 120)
{
	static struct guest_result res;
	char dir[] = "/tmp/vm-fork-hostile-XXXXXX", path[64], cmd[64];
	const struct hostile h = { "vsock", path, 2, 19 };

	SKIP_WITHOUT_KVM();
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	run_hostile(&h, &res);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

Test(virtio_guest, hostile_driver_against_net, .timeout = 120)
{
	static struct guest_result res;
	const struct hostile h = { "net", "tap:vmfhostile", 3, 1 };

	SKIP_WITHOUT_KVM();
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "a network namespace: %s", strerror(errno));
	run_hostile(&h, &res);
}

/* The same guest with the device off: every slot reads as absent, and the driver says so. */
Test(virtio_guest, absent_device_reads_device_id_zero, .timeout = 60)
{
	static struct guest_result res;
	struct guest_opts o = { .timeout_s = 30, .cmdline = "seed=1" };

	SKIP_WITHOUT_KVM();
	harness_run_guest("virtio_hostile", &o, &res);
	cr_assert_eq(res.ret, 0);
	cr_assert_geq(res.nreports, 4);
	cr_expect_eq(res.reports[0], VIRTIO_MMIO_MAGIC);
	cr_expect_eq(res.reports[2], 0, "virtio-rng turned off still has a device id");
	cr_expect_eq(res.status, 2, "exit %d: a driver with no device found one", res.status);
}
