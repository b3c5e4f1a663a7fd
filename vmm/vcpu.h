/* A vCPU: its KVM fd, its kvm_run page and the thread that runs it. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

struct vm;
struct boot_image;

struct vcpu {
	struct vm *vm;
	unsigned index;           /* also its APIC id */
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
};

/*
 * Create vCPU index with its CPUID and, for_boot, the FPU, MSR and LAPIC set-up
 * firmware would leave; without it (a shell, whose saved state is loaded
 * next and sets all of those) that is four vCPU ioctls less.
 */
int vcpu_create(struct vm *vm, unsigned index, bool for_boot, struct vcpu **out);
/* Give the vCPU its CPUID (the VM's table or this host's, shaped for its index). */
int vcpu_set_cpuid(struct vcpu *vcpu);
/* Point the boot vCPU at the kernel (64-bit boot protocol). */
int vcpu_set_boot_regs(struct vcpu *vcpu, const struct boot_image *kernel);
int vcpu_start(struct vcpu *vcpu);
/* Make the vCPU leave KVM_RUN soon; the thread then checks vm_stopping() and pauses. */
void vcpu_kick(struct vcpu *vcpu);
/*
 * Complete the exit the vCPU is in (KVM finishes an I/O or MMIO instruction
 * only on the next KVM_RUN) without running the guest further: re-enter with
 * immediate_exit set. Only from the vCPU's own thread.
 */
void vcpu_complete_exit(struct vcpu *vcpu);
/* The vCPU whose thread calls this, or NULL on any other thread. */
struct vcpu *vcpu_self(void);
void vcpu_join(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);
/* Print the registers that explain a crash (RIP, RSP, CR*, EFER, CS). */
void vcpu_dump(struct vcpu *vcpu);

#endif
