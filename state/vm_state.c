/* Saving and loading the VM-wide KVM state: PIT, kvmclock, PICs and IOAPIC. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "state/state.h"

#define MSR_IA32_TSC 0x10

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int vm_state_save(int vm_fd, struct vm_state *st)
{
	int ret = kvm_ioctl(vm_fd, KVM_GET_PIT2, &st->pit);

	if (!ret)
		ret = kvm_ioctl(vm_fd, KVM_GET_CLOCK, &st->clock);
	st->captured_ns = realtime_ns();
	for (unsigned i = 0; !ret && i < STATE_NR_IRQCHIPS; i++) {
		memset(&st->irqchip[i], 0, sizeof(st->irqchip[i]));
		st->irqchip[i].chip_id = i; /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */
		ret = kvm_ioctl(vm_fd, KVM_GET_IRQCHIP, &st->irqchip[i]);
	}
	return ret;
}

int vm_state_restore(int vm_fd, const struct vm_state *st)
{
	/* flags=0: "clock" is the guest's time now, not a value to advance by realtime. */
	struct kvm_clock_data clock = { .clock = st->clock.clock };
	int ret;

	for (unsigned i = 0; i < STATE_NR_IRQCHIPS; i++) {
		if (st->irqchip[i].chip_id != i) {
			pr_err("VM state: irqchip %u has chip id %u", i, st->irqchip[i].chip_id);
			return -EINVAL;
		}
	}
	ret = kvm_ioctl(vm_fd, KVM_SET_PIT2, &st->pit);
	if (!ret)
		ret = kvm_ioctl(vm_fd, KVM_SET_CLOCK, &clock);
	for (unsigned i = 0; !ret && i < STATE_NR_IRQCHIPS; i++)
		ret = kvm_ioctl(vm_fd, KVM_SET_IRQCHIP, &st->irqchip[i]);
	return ret;
}

static const struct kvm_msr_entry *saved_tsc(const struct vcpu_state *v)
{
	for (uint32_t i = 0; i < v->nmsrs && i < STATE_MAX_MSRS; i++)
		if (v->msrs[i].index == MSR_IA32_TSC)
			return &v->msrs[i];
	return NULL;
}

/* TSC = what was saved + the elapsed time in this vCPU's ticks (left alone where the rate is unknown). */
static int catch_up_tsc(int vcpu_fd, const struct vcpu_state *v, uint64_t elapsed_ns)
{
	const struct kvm_msr_entry *tsc = saved_tsc(v);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} set = { .hdr.nmsrs = 1, .entry.index = MSR_IA32_TSC };
	int ret;

	if (!tsc || !v->tsc_khz)
		return 0;
	set.entry.data = tsc->data + (uint64_t)((unsigned __int128)elapsed_ns * v->tsc_khz / 1000000u);
	ret = kvm_ioctl(vcpu_fd, KVM_SET_MSRS, &set);
	return ret < 0 ? ret : ret == 1 ? 0 : -EIO;
}

int vm_state_catch_up(int vm_fd, const int *vcpu_fds, const struct vcpu_state *vcpus,
		      unsigned ncpus, const struct vm_state *st)
{
	uint64_t now = realtime_ns();
	uint64_t elapsed = now > st->captured_ns ? now - st->captured_ns : 0;
	struct kvm_clock_data clock = { .clock = st->clock.clock + elapsed };
	int ret = 0;

	if (!st->captured_ns)
		return 0;
	for (unsigned i = 0; !ret && i < ncpus; i++)
		ret = catch_up_tsc(vcpu_fds[i], &vcpus[i], elapsed);
	if (!ret)
		ret = kvm_ioctl(vm_fd, KVM_SET_CLOCK, &clock);
	return ret;
}
