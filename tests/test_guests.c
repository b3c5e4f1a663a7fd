/*
 * Our test guests (guest/NAME.c) booted on KVM in this process; each reports
 * through the control device and the test asserts what it reported.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "devices/ctl_abi.h"
#include "tests/harness.h"
#include "vmm/vcpu.h"

static struct guest_result res;

static void run(const char *name, const char *cmdline, unsigned ncpus)
{
	struct guest_opts o = { .cmdline = cmdline, .ncpus = ncpus };

	harness_run_guest(name, &o, &res);
	cr_assert_eq(res.ret, 0, "%s: the VM did not start (%d)", name, res.ret);
	cr_assert(!res.timed_out, "%s: no exit within the time limit; console:\n%s", name,
		  res.console);
}

static void expect_exit(const char *name, int status)
{
	cr_assert_eq(res.reason, VM_STOP_GUEST_EXIT, "%s: stopped by %s; console:\n%s", name,
		     vm_stop_reason_name(res.reason), res.console);
	cr_assert_eq(res.status, status, "%s: exit status; console:\n%s", name, res.console);
}

Test(guests, hello_runs_at_cpl3)
{
	SKIP_WITHOUT_KVM();
	run("hello", NULL, 1);
	expect_exit("hello", 0);
	cr_assert_eq(res.nreports, 1);
	cr_assert_eq(res.reports[0], 3, "main() runs at CPL3");
	cr_assert(strstr(res.console, "hello from vm-fork guest at CPL3\n"), "%s", res.console);
}

Test(guests, exit_status_passes_through)
{
	static const struct {
		const char *cmdline;
		int status;
	} cases[] = { { "status=7", 7 }, { "status=0x2a", 42 }, { "status=300", 300 & 0xff },
		      { "a=1 status=3 status=5", 5 } };

	SKIP_WITHOUT_KVM();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run("exit_status", cases[i].cmdline, 1);
		expect_exit("exit_status", cases[i].status);
	}
}

Test(guests, exceptions_from_cpl3_come_back)
{
	SKIP_WITHOUT_KVM();
	run("exceptions", NULL, 1);
	expect_exit("exceptions", 0);
	cr_assert_eq(res.nreports, 8);
	cr_assert_eq(res.reports[0], 3, "#BP");
	cr_assert_eq(res.reports[1], 2, "#DE");
	cr_assert_eq(res.reports[2], 1, "#UD");
	cr_assert_eq(res.reports[3], 1, "#GP");
	cr_assert_eq(res.reports[4], 1, "#PF");
	cr_assert_eq(res.reports[5], 0x8000000000ULL, "CR2");
	cr_assert_eq(res.reports[6], 4, "#PF error code: user read, not present");
	cr_assert_eq(res.reports[7], 3);
}

Test(guests, unexpected_faults_exit_with_vector)
{
	static const struct {
		const char *kind;
		int status;
	} cases[] = { { "fault=ud", 0x76 }, { "fault=de", 0x70 }, { "fault=pf", 0x7e },
		      { "fault=cpl0", 0x76 }, { "fault=df", 0x78 }, { "fault=panic", 0x6d } };

	SKIP_WITHOUT_KVM();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run("fault", cases[i].kind, 1);
		expect_exit(cases[i].kind, cases[i].status);
	}
}

Test(guests, lapic_timer_interrupts_cpl3)
{
	SKIP_WITHOUT_KVM();
	run("timer", NULL, 1);
	expect_exit("timer", 0);
	cr_assert_eq(res.nreports, 3);
	cr_assert_gt(res.reports[0], 0, "ticks");
	cr_assert_eq(res.reports[2], 1, "the TSC never went backwards");
}

Test(guests, sse_state_survives_interrupts)
{
	SKIP_WITHOUT_KVM();
	run("sse", NULL, 1);
	expect_exit("sse", 0);
	cr_assert_eq(res.reports[0], 0xdcf4d232f6142a45ULL, "XMM checksum");
	cr_assert_eq(res.reports[2], 0x7f80, "MXCSR");
}

static void smp_with(unsigned ncpus)
{
	run("smp", NULL, ncpus);
	expect_exit("smp", 0);
	cr_assert_eq(res.reports[0], ncpus, "CPUs that checked in");
	cr_assert_eq(res.reports[1], ncpus, "NCPUS register");
	cr_assert_eq(res.reports[2], ncpus == 64 ? ~0ULL : (1ULL << ncpus) - 1, "APIC ids 0..n-1");
	cr_assert_eq(res.reports[3], ncpus, "all at CPL3");
	cr_assert_eq(res.reports[4], ncpus, "no lost increments");
}

Test(guests, smp_starts_aps_with_init_sipi)
{
	SKIP_WITHOUT_KVM();
	smp_with(1);
	smp_with(2);
	smp_with(4);
}

Test(guests, uart_output_reaches_console)
{
	SKIP_WITHOUT_KVM();
	run("uart", NULL, 1);
	expect_exit("uart", 0);
	cr_assert(strstr(res.console, "uart: hello"), "%s", res.console);
}

Test(guests, i8042_reset_stops_vm)
{
	SKIP_WITHOUT_KVM();
	run("reset", NULL, 1);
	cr_assert_eq(res.reason, VM_STOP_RESET, "stopped by %s", vm_stop_reason_name(res.reason));
}

Test(guests, hostile_guest_cannot_hurt_vmm)
{
	SKIP_WITHOUT_KVM();
	run("hostile", NULL, 1);
	expect_exit("hostile", 0);
	cr_assert_eq(res.nreports, 11);
	cr_assert_eq(res.reports[1], 0xff, "unclaimed inb reads all ones");
	cr_assert_eq(res.reports[2], 0xffff);
	cr_assert_eq(res.reports[3], 0xffffffff);
	cr_assert_eq(res.reports[4], ~0ULL, "unclaimed MMIO reads all ones");
	cr_assert_eq(res.reports[6], 0, "bad control-device reads return 0");
	cr_assert_eq(res.reports[8], VMFORK_CTL_MAGIC_VALUE, "control device still works");
	cr_assert_eq(res.reports[9], 1);
	cr_assert(strstr(res.console, "hostile: survived"), "%s", res.console);
}

Test(guests, info_reads_control_device)
{
	SKIP_WITHOUT_KVM();
	run("info", "hello=world", 2);
	expect_exit("info", 0);
	cr_assert_eq(res.reports[0], VMFORK_CTL_MAGIC_VALUE);
	cr_assert_eq(res.reports[1], VMFORK_CTL_VERSION_VALUE);
	cr_assert_eq(res.reports[2], 0, "a booted VM is clone 0");
	cr_assert_eq(res.reports[3], 0, "generation 0");
	cr_assert_eq(res.reports[4], 2);
	cr_assert_eq(res.reports[6], strlen("hello=world"));
}

Test(guests, big_memory_layouts)
{
	static const uint64_t sizes[] = { 16 * MiB, 3 * GiB, 4 * GiB, 16 * GiB };

	SKIP_WITHOUT_KVM();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_opts o = { .mem = sizes[i], .ncpus = 2 };

		harness_run_guest("smp", &o, &res);
		cr_assert_eq(res.ret, 0);
		expect_exit("smp", 0);
	}
}

Test(guests, cpuid_policy_seen_by_guest)
{
	struct guest_opts o = { .ncpus = 3 };

	SKIP_WITHOUT_KVM();
	harness_run_guest("cpuid", &o, &res);
	expect_exit("cpuid", 0);
	cr_assert(res.reports[0] & (1u << 31), "hypervisor bit");
	cr_assert_eq((res.reports[1] >> 16) & 0xff, 3, "logical CPU count in leaf 1");
	cr_assert_eq(res.reports[3], 0x4b4d564b, "KVM signature leaf kept");
}

/*
 * The mask is checked in what KVM holds for the vCPU (KVM_GET_CPUID2), not
 * through a guest: nested PVM hosts do not intercept CPUID, so there a guest
 * sees the host's bits whatever KVM was given.
 */
Test(guests, cpuid_mask_reaches_kvm)
{
	struct vm_config cfg = { .mem_size = 16 * MiB, .ncpus = 2, .console = "none",
				 .cpuid_mask = "x2apic,0x1:ecx:13" };
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[256];
	} c = { .hdr.nent = 256 };
	struct kvm_host kvm;
	struct kvm_cpuid_entry2 *leaf1;
	struct vm *vm;

	SKIP_WITHOUT_KVM();
	cr_assert_eq(kvm_host_open(&kvm, NULL), 0);
	cr_assert_eq(vm_create(&vm, &kvm, &cfg), 0);
	cr_assert_eq(kvm_ioctl(vm->vcpus[1]->fd, KVM_GET_CPUID2, &c), 0);
	leaf1 = cpuid_find(&c.hdr, 1, 0);
	cr_assert_not_null(leaf1);
	cr_assert_eq(leaf1->ecx & ((1u << 21) | (1u << 13)), 0, "x2apic and cx16 hidden");
	cr_assert(leaf1->ecx & (1u << 31), "hypervisor bit");
	cr_assert_eq(leaf1->ebx >> 24, 1, "APIC id of vCPU 1");
	vm_destroy(vm);
	kvm_host_close(&kvm);
}

/* QEMU 7.2's nested SVM let XSETBV through to the CPU without KVM seeing it. */
Test(guests, xcr0_survives_exits)
{
	SKIP_WITHOUT_KVM();
	run("xcr0", NULL, 1);
	expect_exit("xcr0", 0);
	if (res.reports[0] == 0)
		harness_note("this CPU has no AVX: only the absence is checked");
	else
		cr_assert_eq(res.reports[2], 7, "XCR0 after exits: %#lx (KVM never saw XSETBV)",
			     (unsigned long)res.reports[2]);
}
