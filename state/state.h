/*
 * The complete KVM state of a vCPU and of a VM's in-kernel devices, as plain
 * fixed-size structs: a fork saves the parent's state into them and loads it
 * into a child VM created with the same configuration (same CPUID, irqchip,
 * PIT flags and memory slots). No allocation happens on the save/restore
 * path; the MSR list is built once per process.
 *
 * The caller quiesces first: no vCPU of the VM is inside KVM_RUN, and each
 * vCPU has re-entered KVM_RUN once with immediate_exit=1 after an I/O, MMIO
 * or MSR exit, so that the instruction is complete. Every function returns 0
 * or -errno; a failed ioctl is named in the log by kvm_ioctl().
 *
 * Restore the VM state first, then the vCPUs (Firecracker does the reverse,
 * which loads too): writing the kvmclock wall-clock MSR makes KVM rewrite the
 * guest's wall-clock record from the VM's kvmclock, which must by then be
 * the restored one, or the guest's wall time jumps by its uptime.
 *
 * Not covered: nested virtualisation state (KVM_GET_NESTED_STATE), which a
 * guest that runs its own VMX/SVM guests would need.
 */
#ifndef STATE_STATE_H
#define STATE_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/kvm.h"

#define STATE_MAX_MSRS   128
#define STATE_XSAVE_MAX  (16 * 1024) /* covers AMX tile data (~11 KiB) */
#define STATE_XSAVE_MIN  4096        /* sizeof(struct kvm_xsave): KVM_GET_XSAVE */

#define STATE_MSR_TSC_DEADLINE 0x6e0

/*
 * The MSRs worth saving on this host: KVM_GET_MSR_INDEX_LIST plus the
 * architectural MSRs KVM always emulates, kept when serialisable (see
 * msr_list.c) and when KVM can both read and write them on a fresh vCPU.
 * TSC_DEADLINE, when present, is the last index: it must be written after
 * the TSC, in its own KVM_SET_MSRS call.
 */
struct msr_list {
	uint32_t n;
	uint32_t index[STATE_MAX_MSRS];
};

/*
 * Build the list for this host, probing on a scratch VM whose vCPU has the
 * CPUID vcpu_create() gives. Once per process: ~1 ms, plus the scratch VM's
 * teardown (7-15 ms on a nested host), which a caller in a hurry (the first
 * fork) avoids by taking the VM's fd in *scratch_vm_fd and closing it later.
 * scratch_vm_fd NULL: the scratch VM is closed here.
 */
int msr_list_init(struct msr_list *l, const struct kvm_host *kvm, int *scratch_vm_fd);
/* Whether index is one msr_list_init() would consider (before probing). */
bool msr_is_serialisable(uint32_t index);

struct vcpu_state {
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	uint32_t tsc_khz;
	uint32_t nmsrs;                     /* entries used in msrs[] */
	struct kvm_msr_entry msrs[STATE_MAX_MSRS];
	uint32_t xsave_size;                /* bytes of xsave[] KVM filled */
	/* struct kvm_xsave and its KVM_CAP_XSAVE2 extension; zero beyond xsave_size. */
	uint32_t xsave[STATE_XSAVE_MAX / 4] __attribute__((aligned(64)));
};

/*
 * Read vCPU vcpu_fd of VM vm_fd into st, in Firecracker's order: MP_STATE
 * first (it can change the LAPIC), VCPU_EVENTS last. MSRs of l that KVM
 * refuses to read on this vCPU are left out of st.
 */
int vcpu_state_save(int vcpu_fd, int vm_fd, const struct msr_list *l, struct vcpu_state *st);

/*
 * Load st into vcpu_fd, which was created like the saved vCPU (vcpu_create():
 * same CPUID). Order: TSC_KHZ (only if it differs) -> MP_STATE -> REGS ->
 * SREGS -> XSAVE -> XCRS -> DEBUGREGS -> LAPIC -> MSRs (TSC_DEADLINE last in
 * the call) -> VCPU_EVENTS -> KVM_KVMCLOCK_CTRL. st is validated first (-EINVAL);
 * KVM validates the values. On an error the vCPU is partly loaded: discard it.
 * KVM_SET_XSAVE reads the target VM's KVM_CAP_XSAVE2 size from st->xsave,
 * which holds STATE_XSAVE_MAX bytes, zero past what was saved.
 */
int vcpu_state_restore(int vcpu_fd, const struct vcpu_state *st);
/*
 * The same; same_vcpu: st was saved from this very vCPU (a reset in place),
 * so the TSC frequency is not checked and KVM_KVMCLOCK_CTRL not sent.
 */
int vcpu_state_load(int vcpu_fd, const struct vcpu_state *st, bool same_vcpu);

/* The MSR entry for index in st, or NULL. */
const struct kvm_msr_entry *vcpu_state_msr(const struct vcpu_state *st, uint32_t index);

enum {
	STATE_PIC_MASTER = KVM_IRQCHIP_PIC_MASTER,
	STATE_PIC_SLAVE = KVM_IRQCHIP_PIC_SLAVE,
	STATE_IOAPIC = KVM_IRQCHIP_IOAPIC,
	STATE_NR_IRQCHIPS
};

struct vm_state {
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct kvm_irqchip irqchip[STATE_NR_IRQCHIPS]; /* chip_id == array index */
	uint64_t captured_ns;  /* the host's CLOCK_REALTIME when saved: what a new identity catches up from */
};

int vm_state_save(int vm_fd, struct vm_state *st);
/*
 * Load st into vm_fd: PIT2 -> CLOCK -> IRQCHIPs. The clock is set with
 * flags=0, so the guest's kvmclock goes on from the value it had when saved:
 * a fork child does not see the time its parent spent paused, consistent with
 * its TSC, which vcpu_state_restore() also sets to the saved value.
 * (KVM_CLOCK_REALTIME would instead advance it by the host's elapsed time.)
 */
int vm_state_restore(int vm_fd, const struct vm_state *st);
/*
 * A new identity made from st (a clone, a restored snapshot) lives in the
 * host's present: move its kvmclock and every vCPU's TSC on by the host time
 * since st was saved, as after a suspend, so that the guest's wall clock
 * (TLS, token expiry) is not as stale as the snapshot. vcpus[i] is the state
 * loaded into vcpu_fds[i]. Reset-in-place does not call it: a reset goes
 * back in time on purpose.
 */
int vm_state_catch_up(int vm_fd, const int *vcpu_fds, const struct vcpu_state *vcpus,
		      unsigned ncpus, const struct vm_state *st);

#endif
