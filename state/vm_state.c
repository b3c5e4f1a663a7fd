/* Saving and loading the VM-wide KVM state: PIT, kvmclock, PICs and IOAPIC. */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "state/state.h"

int vm_state_save(int vm_fd, struct vm_state *st)
{
	int ret = kvm_ioctl(vm_fd, KVM_GET_PIT2, &st->pit);

	if (!ret)
		ret = kvm_ioctl(vm_fd, KVM_GET_CLOCK, &st->clock);
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
