/* Which MSRs a vCPU snapshot carries: decided once per process for this host. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpuid.h"
#include "core/log.h"
#include "state/state.h"

#define MAX_INDEX_LIST 1024

struct msr_range {
	uint32_t first, last;
};

/*
 * Guest-writable state that no other ioctl carries. Left out on purpose:
 * EFER and APIC_BASE (KVM_SET_SREGS sets both), the x2APIC range
 * 0x800-0x8ff (KVM_SET_LAPIC carries it), read-only feature MSRs such as
 * ARCH_CAPABILITIES, PLATFORM_INFO and MTRRcap (the same on a vCPU created
 * with the same CPUID), machine-check banks, VMX capability MSRs (read-only;
 * nested state is not saved, see state.h) and Hyper-V MSRs (vm-fork sets up
 * no Hyper-V enlightenments).
 * FS_BASE and GS_BASE duplicate SREGS but cost nothing and keep MSR dumps
 * complete.
 */
static const struct msr_range serialisable[] = {
	{ 0x00000010, 0x00000010 }, /* TSC */
	{ 0x00000011, 0x00000012 }, /* KVM_WALL_CLOCK, KVM_SYSTEM_TIME: kvmclock's first MSRs */
	{ 0x0000003b, 0x0000003b }, /* TSC_ADJUST */
	{ 0x00000048, 0x00000048 }, /* SPEC_CTRL */
	{ 0x000000c1, 0x000000c8 }, /* PERFCTR0-7 (architectural PMU) */
	{ 0x000000e1, 0x000000e1 }, /* UMWAIT_CONTROL */
	{ 0x00000140, 0x00000140 }, /* MISC_FEATURES_ENABLES (CPUID faulting) */
	{ 0x00000174, 0x00000176 }, /* SYSENTER_CS, _ESP, _EIP */
	{ 0x00000186, 0x0000018d }, /* PERFEVTSEL0-7 */
	{ 0x000001a0, 0x000001a0 }, /* MISC_ENABLE */
	{ 0x000001d9, 0x000001d9 }, /* DEBUGCTL */
	{ 0x00000200, 0x0000020f }, /* MTRR PHYSBASE/PHYSMASK 0-7 */
	{ 0x00000250, 0x00000250 }, /* MTRRfix64K_00000 */
	{ 0x00000258, 0x00000259 }, /* MTRRfix16K_80000, _A0000 */
	{ 0x00000268, 0x0000026f }, /* MTRRfix4K_C0000 .. _F8000 */
	{ 0x00000277, 0x00000277 }, /* PAT */
	{ 0x000002ff, 0x000002ff }, /* MTRRdefType */
	{ 0x00000309, 0x0000030c }, /* FIXED_CTR0-3 */
	{ 0x0000038d, 0x00000390 }, /* FIXED_CTR_CTRL, GLOBAL_STATUS, _CTRL, _OVF_CTRL */
	{ STATE_MSR_TSC_DEADLINE, STATE_MSR_TSC_DEADLINE },
	{ 0x00000d90, 0x00000d90 }, /* BNDCFGS */
	{ 0x00000da0, 0x00000da0 }, /* XSS: supervisor XSAVE components */
	{ 0xc0000081, 0xc0000084 }, /* STAR, LSTAR, CSTAR, SFMASK */
	{ 0xc0000100, 0xc0000103 }, /* FS_BASE, GS_BASE, KERNEL_GS_BASE, TSC_AUX */
	{ 0xc0010000, 0xc0010007 }, /* AMD PERFEVTSEL0-3, PERFCTR0-3 */
	{ 0xc0010015, 0xc0010015 }, /* AMD HWCR */
	{ 0xc0010200, 0xc001020b }, /* AMD PERF_CTL/CTR 0-5 */
	/* KVM's own: kvmclock, wall clock, async PF, steal time, PV EOI, poll control, ... */
	{ 0x4b564d00, 0x4b564dff },
};

/*
 * MSRs every KVM emulates but KVM_GET_MSR_INDEX_LIST does not list (it lists
 * "msrs_to_save" and "emulated_msrs"; MTRRs, PAT and MISC_ENABLE are in
 * neither), so they are always tried.
 */
static const struct msr_range always_try[] = {
	{ 0x00000010, 0x00000010 }, { 0x00000174, 0x00000176 }, { 0x000001a0, 0x000001a0 },
	{ 0x00000200, 0x0000020f }, { 0x00000250, 0x00000250 }, { 0x00000258, 0x00000259 },
	{ 0x00000268, 0x0000026f }, { 0x00000277, 0x00000277 }, { 0x000002ff, 0x000002ff },
	{ 0xc0000081, 0xc0000084 }, { 0xc0000100, 0xc0000102 },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

bool msr_is_serialisable(uint32_t index)
{
	for (size_t i = 0; i < ARRAY_SIZE(serialisable); i++)
		if (index >= serialisable[i].first && index <= serialisable[i].last)
			return true;
	return false;
}

static bool list_has(const struct msr_list *l, uint32_t index)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->index[i] == index)
			return true;
	return false;
}

static int list_add(struct msr_list *l, uint32_t index)
{
	if (!msr_is_serialisable(index) || list_has(l, index))
		return 0;
	if (l->n == STATE_MAX_MSRS) {
		pr_err("more than %d MSRs to save: raise STATE_MAX_MSRS", STATE_MAX_MSRS);
		return -E2BIG;
	}
	l->index[l->n++] = index;
	return 0;
}

/* The union of KVM's index list and always_try[], serialisable ones only. */
static int gather_candidates(struct msr_list *l, int kvm_fd)
{
	struct {
		struct kvm_msr_list hdr;
		uint32_t indices[MAX_INDEX_LIST];
	} kl = { .hdr.nmsrs = MAX_INDEX_LIST };
	int ret = kvm_ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &kl);

	if (ret < 0)
		return ret;
	for (uint32_t i = 0; !ret && i < kl.hdr.nmsrs && i < MAX_INDEX_LIST; i++)
		ret = list_add(l, kl.indices[i]);
	for (size_t r = 0; !ret && r < ARRAY_SIZE(always_try); r++)
		for (uint32_t m = always_try[r].first; !ret && m <= always_try[r].last; m++)
			ret = list_add(l, m);
	return ret;
}

/* KVM_GET_MSRS and KVM_SET_MSRS return how many entries they handled. */
static bool msr_round_trips(int vcpu_fd, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = index };

	if (kvm_ioctl(vcpu_fd, KVM_GET_MSRS, &m) != 1)
		return false;
	return kvm_ioctl(vcpu_fd, KVM_SET_MSRS, &m) == 1;
}

/* Keep what KVM reads and writes back on vcpu_fd; TSC_DEADLINE goes last. */
static void probe(struct msr_list *l, int vcpu_fd)
{
	bool deadline = false;
	uint32_t n = 0;

	for (uint32_t i = 0; i < l->n; i++) {
		if (!msr_round_trips(vcpu_fd, l->index[i])) {
			pr_debug("MSR %#x: KVM cannot read and write it; not saved", l->index[i]);
			continue;
		}
		if (l->index[i] == STATE_MSR_TSC_DEADLINE)
			deadline = true;
		else
			l->index[n++] = l->index[i];
	}
	if (deadline)
		l->index[n++] = STATE_MSR_TSC_DEADLINE;
	l->n = n;
}

/* A VM with an in-kernel irqchip and one vCPU shaped like vcpu_create()'s. */
static int scratch_vcpu(const struct kvm_host *kvm, int *vm_fd, int *vcpu_fd)
{
	struct kvm_cpuid2 *cpuid = cpuid_for_vcpu(kvm->supported_cpuid, 0, 1, NULL);
	int ret;

	*vm_fd = *vcpu_fd = -1;
	if (!cpuid)
		return -ENOMEM;
	ret = *vm_fd = kvm_ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (ret >= 0)
		ret = kvm_ioctl(*vm_fd, KVM_CREATE_IRQCHIP, 0);
	if (ret >= 0)
		ret = *vcpu_fd = kvm_ioctl(*vm_fd, KVM_CREATE_VCPU, 0UL);
	if (ret >= 0)
		ret = kvm_ioctl(*vcpu_fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	return ret < 0 ? ret : 0;
}

int msr_list_init(struct msr_list *l, const struct kvm_host *kvm, int *scratch_vm_fd)
{
	int vm_fd = -1, vcpu_fd = -1;
	int ret;

	memset(l, 0, sizeof(*l));
	ret = gather_candidates(l, kvm->fd);
	if (!ret)
		ret = scratch_vcpu(kvm, &vm_fd, &vcpu_fd);
	if (!ret)
		probe(l, vcpu_fd);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (scratch_vm_fd && ret >= 0)
		*scratch_vm_fd = vm_fd;
	else if (vm_fd >= 0)
		close(vm_fd);
	if (ret < 0)
		l->n = 0;
	return ret;
}
