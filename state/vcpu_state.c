/* Saving and loading one vCPU's complete KVM state (order: state/state.h). */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "state/state.h"

/* A KVM_GET_MSRS/KVM_SET_MSRS argument: the header and its entries, contiguous. */
struct msr_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[STATE_MAX_MSRS];
};

/*
 * KVM_CAP_XSAVE2 on the VM fd gives the size KVM_GET_XSAVE2 writes (more
 * than 4 KiB once AMX is permitted); without it KVM_GET_XSAVE writes 4 KiB.
 */
static int save_xsave(int vcpu_fd, int vm_fd, struct vcpu_state *st)
{
	int size = kvm_check_cap(vm_fd, KVM_CAP_XSAVE2);
	int ret;

	if (size > STATE_XSAVE_MAX) {
		pr_err("KVM's XSAVE state has %d bytes, more than the %d vm-fork keeps", size,
		       STATE_XSAVE_MAX);
		return -E2BIG;
	}
	if (size >= STATE_XSAVE_MIN) {
		ret = kvm_ioctl(vcpu_fd, KVM_GET_XSAVE2, st->xsave);
	} else {
		size = STATE_XSAVE_MIN;
		ret = kvm_ioctl(vcpu_fd, KVM_GET_XSAVE, st->xsave);
	}
	if (ret < 0)
		return ret;
	/* KVM_SET_XSAVE reads as many bytes as the target VM's size: keep the rest defined. */
	memset((uint8_t *)st->xsave + size, 0, STATE_XSAVE_MAX - (size_t)size);
	st->xsave_size = (uint32_t)size;
	return 0;
}

static int save_tsc_khz(int vcpu_fd, struct vcpu_state *st)
{
	int khz = kvm_ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);

	if (khz < 0)
		return khz;
	st->tsc_khz = (uint32_t)khz; /* 0: KVM does not know; restore leaves it alone */
	return 0;
}

/*
 * KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it
 * read. Such an MSR does not exist for this vCPU (its CPUID hides the
 * feature), so there is nothing to save: skip it and read on.
 */
static int save_msrs(int vcpu_fd, const struct msr_list *l, struct vcpu_state *st)
{
	struct msr_buf buf;
	uint32_t done = 0, n = l->n < STATE_MAX_MSRS ? l->n : STATE_MAX_MSRS;

	st->nmsrs = 0;
	while (done < n) {
		uint32_t want = n - done;
		int ret;

		buf.hdr.nmsrs = want;
		for (uint32_t i = 0; i < want; i++)
			buf.e[i] = (struct kvm_msr_entry){ .index = l->index[done + i] };
		ret = kvm_ioctl(vcpu_fd, KVM_GET_MSRS, &buf);
		if (ret < 0)
			return ret;
		memcpy(&st->msrs[st->nmsrs], buf.e, (size_t)ret * sizeof(buf.e[0]));
		st->nmsrs += (uint32_t)ret;
		done += (uint32_t)ret;
		if ((uint32_t)ret < want) {
			pr_debug("MSR %#x: KVM cannot read it on this vCPU; not saved", l->index[done]);
			done++;
		}
	}
	return 0;
}

int vcpu_state_save(int vcpu_fd, int vm_fd, const struct msr_list *l, struct vcpu_state *st)
{
	/* MP_STATE first: reading it makes KVM process pending INIT/SIPI into the LAPIC. */
	int ret = kvm_ioctl(vcpu_fd, KVM_GET_MP_STATE, &st->mp_state);

	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_GET_REGS, &st->regs);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_GET_SREGS, &st->sregs);
	if (!ret)
		ret = save_xsave(vcpu_fd, vm_fd, st);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_GET_XCRS, &st->xcrs);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &st->debugregs);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_GET_LAPIC, &st->lapic);
	if (!ret)
		ret = save_tsc_khz(vcpu_fd, st);
	if (!ret)
		ret = save_msrs(vcpu_fd, l, st);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &st->events);
	return ret;
}

/* The state may come from a file one day: check what KVM cannot check for us. */
static int check_state(const struct vcpu_state *st)
{
	if (st->nmsrs > STATE_MAX_MSRS) {
		pr_err("vCPU state: %u MSRs, at most %d", st->nmsrs, STATE_MAX_MSRS);
		return -EINVAL;
	}
	if (st->xsave_size < STATE_XSAVE_MIN || st->xsave_size > STATE_XSAVE_MAX) {
		pr_err("vCPU state: XSAVE area of %u bytes", st->xsave_size);
		return -EINVAL;
	}
	return 0;
}

/* Set by a saved rate only: KVM scales the guest's TSC, which costs where it isn't needed. */
static int restore_tsc_khz(int vcpu_fd, uint32_t khz)
{
	int cur;

	if (!khz)
		return 0;
	cur = kvm_ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	if (cur < 0 || (uint32_t)cur == khz)
		return cur < 0 ? cur : 0;
	return kvm_ioctl(vcpu_fd, KVM_SET_TSC_KHZ, (unsigned long)khz);
}

static int set_msrs(int vcpu_fd, struct msr_buf *buf)
{
	int ret = kvm_ioctl(vcpu_fd, KVM_SET_MSRS, buf);

	if (ret < 0)
		return ret;
	if ((uint32_t)ret < buf->hdr.nmsrs) {
		pr_err("KVM_SET_MSRS: KVM refused MSR %#x = %#llx (%d of %u set)",
		       buf->e[ret].index, (unsigned long long)buf->e[ret].data, ret,
		       buf->hdr.nmsrs);
		return -EINVAL;
	}
	return 0;
}

/*
 * TSC_DEADLINE after everything else, in a call of its own: KVM arms the
 * LAPIC timer from it relative to the guest TSC, which must be restored by
 * then (and the LAPIC, restored before, must be in TSC-deadline mode).
 */
static int restore_msrs(int vcpu_fd, const struct vcpu_state *st)
{
	struct msr_buf buf;
	const struct kvm_msr_entry *deadline = NULL;
	uint32_t n = 0;
	int ret;

	for (uint32_t i = 0; i < st->nmsrs; i++) {
		if (st->msrs[i].index == STATE_MSR_TSC_DEADLINE)
			deadline = &st->msrs[i];
		else
			buf.e[n++] = st->msrs[i];
	}
	/*
	 * TSC_DEADLINE is relative to the TSC, so it must be written after it:
	 * last in the same call is enough, KVM sets the entries in order (as QEMU
	 * relies on), and saves an ioctl.
	 */
	if (deadline)
		buf.e[n++] = *deadline;
	buf.hdr = (struct kvm_msrs){ .nmsrs = n };
	ret = set_msrs(vcpu_fd, &buf);
	return ret;
}

/* Whether st's guest had turned kvmclock on (bit 0 of a system-time MSR). */
static bool kvmclock_on(const struct vcpu_state *st)
{
	static const uint32_t system_time[] = { 0x4b564d01, 0x12 }; /* MSR_KVM_SYSTEM_TIME_NEW, old */

	for (unsigned i = 0; i < sizeof(system_time) / sizeof(system_time[0]); i++) {
		const struct kvm_msr_entry *e = vcpu_state_msr(st, system_time[i]);

		if (e && (e->data & 1))
			return true;
	}
	return false;
}

/* Tell a kvmclock guest it was paused, so its soft-lockup watchdog stays quiet. */
static int kvmclock_ctrl(int vcpu_fd, const struct vcpu_state *st)
{
	int ret;

	if (!kvmclock_on(st))
		return 0; /* KVM would refuse: nothing to tell */
	ret = kvm_ioctl_quiet(vcpu_fd, KVM_KVMCLOCK_CTRL, 0, EINVAL);

	return ret == -EINVAL ? 0 : ret; /* EINVAL: the guest has not enabled kvmclock */
}

int vcpu_state_restore(int vcpu_fd, const struct vcpu_state *st)
{
	return vcpu_state_load(vcpu_fd, st, false);
}

int vcpu_state_load(int vcpu_fd, const struct vcpu_state *st, bool same_vcpu)
{
	int ret = check_state(st);

	/* The vCPU that saved st still has its TSC frequency. */
	if (!ret && !same_vcpu)
		ret = restore_tsc_khz(vcpu_fd, st->tsc_khz);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_MP_STATE, &st->mp_state);
	/* REGS clears pending exceptions: VCPU_EVENTS, which restores them, comes later. */
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_REGS, &st->regs);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_SREGS, &st->sregs);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_XSAVE, st->xsave);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_XCRS, &st->xcrs);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &st->debugregs);
	/* LAPIC after SREGS, which sets the APIC base (and with it xAPIC/x2APIC mode). */
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_LAPIC, &st->lapic);
	if (!ret)
		ret = restore_msrs(vcpu_fd, st);
	if (!ret)
		ret = kvm_ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &st->events);
	/* A reset returns the guest to a point in its own past: it was not paused meanwhile. */
	if (!ret && !same_vcpu)
		ret = kvmclock_ctrl(vcpu_fd, st);
	return ret;
}

const struct kvm_msr_entry *vcpu_state_msr(const struct vcpu_state *st, uint32_t index)
{
	uint32_t n = st->nmsrs < STATE_MAX_MSRS ? st->nmsrs : STATE_MAX_MSRS;

	for (uint32_t i = 0; i < n; i++)
		if (st->msrs[i].index == index)
			return &st->msrs[i];
	return NULL;
}
