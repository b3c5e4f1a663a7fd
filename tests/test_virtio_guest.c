/*
 * A hostile virtio driver (guest/virtio_hostile.c) against virtio-rng: random
 * register writes, bad queue setups, garbage descriptor chains. The VMM must
 * survive, write nothing outside guest RAM, and the device must still serve
 * a proper driver afterwards.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "core/device.h"
#include "devices/ctl_abi.h"
#include "tests/harness.h"

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */

Test(virtio_guest, hostile_driver_cannot_hurt_the_vmm, .timeout = 120)
{
	static struct guest_result res;
	struct guest_opts o = { .timeout_s = 60 };
	char cmdline[64];
	int rng = device_by_option("rng");

	SKIP_WITHOUT_KVM();
	cr_assert(rng >= 0, "no virtio-rng in the device table");
	snprintf(cmdline, sizeof(cmdline), "seed=%u", harness_seed());
	o.cmdline = cmdline;
	o.devices.args[rng] = "";
	harness_run_guest("virtio_hostile", &o, &res);
	cr_log_info("console:\n%s", res.console);
	cr_assert_eq(res.ret, 0);
	cr_expect_eq(res.reason, VM_STOP_GUEST_EXIT, "stopped by %s", vm_stop_reason_name(res.reason));
	cr_expect_eq(res.status, 0, "the guest saw a check fail (exit %d):\n%s", res.status, res.console);
	cr_assert_eq(res.nreports, 8, "reports: %u", res.nreports);
	cr_expect_eq(res.reports[0], VIRTIO_MMIO_MAGIC);
	cr_expect_eq(res.reports[1], 2, "virtio-mmio version");
	cr_expect_eq(res.reports[2], 4, "virtio-rng's device id");
	cr_expect_eq(res.reports[3], 0xffffffff, "an empty slot answers like nothing at all");
	cr_expect_eq(res.reports[4], 64, "the good request after the garbage: used length");
	cr_expect_gt(res.reports[5], 32, "the good request's bytes are not random: %llu nonzero of 64",
		     (unsigned long long)res.reports[5]);
	cr_expect_eq(res.reports[6], VMFORK_CTL_MAGIC_VALUE,
		     "the control device changed under a chain that pointed at it");
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
