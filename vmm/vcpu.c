#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/cpuid.h"
#include "core/log.h"
#include "vmm/boot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MSR_IA32_MISC_ENABLE     0x1a0
#define MSR_MTRR_DEF_TYPE        0x2ff
#define MISC_ENABLE_FAST_STRING  (1ULL << 0)
#define MTRR_ENABLE_WRITEBACK    ((1ULL << 11) | 6)

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI    (4u << 8)
#define APIC_MODE_EXTINT (7u << 8)

/* Set on each vCPU thread, so device callbacks can tell which vCPU is calling. */
static __thread struct vcpu *current_vcpu;

struct vcpu *vcpu_self(void)
{
	return current_vcpu;
}

/* The kick signal: its handler does nothing; delivery alone makes KVM_RUN return EINTR. */
static void kick_handler(int sig)
{
	(void)sig;
}

static int kick_signal(void)
{
	return SIGRTMIN;
}

static void install_kick_handler(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(kick_signal(), &sa, NULL); /* no SA_RESTART: KVM_RUN must return */
}

int vcpu_set_cpuid(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct kvm_cpuid2 *cpuid = vm->cpuid_table ?
		cpuid_for_vcpu(vm->cpuid_table, vcpu->index, vm->ncpus, NULL) :
		cpuid_for_vcpu(vm->kvm->supported_cpuid, vcpu->index, vm->ncpus, &vm->cpuid_mask);
	int ret;

	if (!cpuid)
		return -ENOMEM;
	ret = kvm_ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	return ret;
}

static int set_msrs(struct vcpu *vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[2];
	} msrs = {
		.hdr.nmsrs = 2,
		.entries = {
			{ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
			/* Firmware enables MTRRs with write-back as default; Linux expects it. */
			{ .index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WRITEBACK },
		},
	};
	int ret = kvm_ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);

	if (ret >= 0 && ret != 2) {
		pr_err("vCPU %u: KVM_SET_MSRS set %d of 2 MSRs", vcpu->index, ret);
		return -EIO;
	}
	return ret < 0 ? ret : 0;
}

static int set_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 }; /* the values after FNINIT */

	return kvm_ioctl(vcpu->fd, KVM_SET_FPU, &fpu);
}

/* Firmware wires LINT0 to the PIC (ExtINT) and LINT1 to NMI on every CPU; Linux relies on it. */
static int set_lapic_lints(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	int ret = kvm_ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic);
	uint32_t lint0 = APIC_MODE_EXTINT, lint1 = APIC_MODE_NMI;

	if (ret < 0)
		return ret;
	memcpy(&lapic.regs[APIC_LVT_LINT0], &lint0, sizeof(lint0));
	memcpy(&lapic.regs[APIC_LVT_LINT1], &lint1, sizeof(lint1));
	return kvm_ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic);
}

static int vcpu_init_state(struct vcpu *vcpu, bool for_boot)
{
	int ret = vcpu_set_cpuid(vcpu);

	if (!for_boot)
		return ret;
	if (!ret)
		ret = set_msrs(vcpu);
	if (!ret)
		ret = set_fpu(vcpu);
	if (!ret)
		ret = set_lapic_lints(vcpu);
	return ret;
}

int vcpu_create(struct vm *vm, unsigned index, bool for_boot, struct vcpu **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct vcpu *vcpu = calloc(1, sizeof(*vcpu));
	int ret;

	if (!vcpu)
		return -ENOMEM;
	pthread_once(&once, install_kick_handler);
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = kvm_ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		ret = vcpu->fd;
		free(vcpu);
		return ret;
	}
	vcpu->run_size = (size_t)vm->kvm->vcpu_mmap_size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		ret = -errno;
		pr_err("vCPU %u: mmap of kvm_run: %s", index, strerror(errno));
		vcpu->run = NULL;
		vcpu_destroy(vcpu);
		return ret;
	}
	ret = vcpu_init_state(vcpu, for_boot);
	if (ret < 0) {
		vcpu_destroy(vcpu);
		return ret;
	}
	*out = vcpu;
	return 0;
}

int vcpu_set_boot_regs(struct vcpu *vcpu, const struct boot_image *kernel)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int ret = kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &sregs);

	if (ret < 0)
		return ret;
	/* Keep what KVM filled in (APIC base, interrupt bitmap); boot code sets the rest. */
	boot_vcpu_sregs(&sregs);
	ret = kvm_ioctl(vcpu->fd, KVM_SET_SREGS, &sregs);
	if (ret < 0)
		return ret;
	memset(&regs, 0, sizeof(regs));
	boot_vcpu_regs(kernel, &regs);
	return kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs);
}

void vcpu_dump(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (kvm_ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return;
	pr_err("vCPU %u: rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx cs=%#x cr0=%#llx cr3=%#llx "
	       "cr4=%#llx efer=%#llx", vcpu->index, r.rip, r.rsp, r.rflags, r.rax, s.cs.selector,
	       s.cr0, s.cr3, s.cr4, s.efer);
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* data_offset and count come from KVM, not from the guest; the page holds them. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_access(&vcpu->vm->bus, BUS_PIO, run->io.port, data, run->io.size, is_write);
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	bus_access(&vcpu->vm->bus, BUS_MMIO, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
		   run->mmio.is_write);
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET:
		vm_guest_ended(vcpu->vm, VM_STOP_RESET, 0);
		break;
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_guest_ended(vcpu->vm, VM_STOP_POWEROFF, 0);
		break;
	default:
		pr_err("vCPU %u: system event %u", vcpu->index, vcpu->run->system_event.type);
		vm_guest_ended(vcpu->vm, VM_STOP_ERROR, 1);
	}
}

static void handle_failure(struct vcpu *vcpu, enum vm_stop_reason reason, const char *what)
{
	struct kvm_run *run = vcpu->run;

	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		pr_err("vCPU %u: %s (KVM internal error, suberror %u)", vcpu->index, what,
		       run->internal.suberror);
	else
		pr_err("vCPU %u: %s (exit reason %u)", vcpu->index, what, run->exit_reason);
	vcpu_dump(vcpu);
	vm_guest_ended(vcpu->vm, reason, reason == VM_STOP_TRIPLE_FAULT ? 2 : 1);
}

static void handle_exit(struct vcpu *vcpu)
{
	switch (vcpu->run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu);
		break;
	case KVM_EXIT_SHUTDOWN:
		handle_failure(vcpu, VM_STOP_TRIPLE_FAULT, "triple fault");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		handle_failure(vcpu, VM_STOP_ERROR, "KVM cannot go on");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		handle_failure(vcpu, VM_STOP_ERROR, "VM entry failed");
		break;
	default:
		handle_failure(vcpu, VM_STOP_ERROR, "unexpected exit");
	}
}

void vcpu_complete_exit(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	kvm_ioctl_quiet(vcpu->fd, KVM_RUN, 0, EINTR);
}

/* Stay out of the guest while the VM is paused, with the last exit completed. */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	vcpu_complete_exit(vcpu);
	pthread_mutex_lock(&vm->lock);
	vm->nparked++;
	pthread_cond_broadcast(&vm->parked);
	while (vm->pause_requested && vm->stop_reason == VM_RUNNING)
		pthread_cond_wait(&vm->resumed, &vm->lock);
	vm->nparked--;
	pthread_mutex_unlock(&vm->lock);
}

static bool pause_requested(struct vm *vm)
{
	return __atomic_load_n(&vm->pause_requested, __ATOMIC_ACQUIRE);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t kick;

	current_vcpu = vcpu;
	sigemptyset(&kick);
	sigaddset(&kick, kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	for (;;) {
		int ret;

		/* Cleared before the checks: a kick after this point is seen by KVM_RUN. */
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (vm_stopping(vcpu->vm))
			break;
		if (pause_requested(vcpu->vm)) {
			vcpu_park(vcpu);
			continue;
		}
		ret = kvm_ioctl_quiet(vcpu->fd, KVM_RUN, 0, EAGAIN);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret < 0) {
			vm_request_stop(vcpu->vm, VM_STOP_ERROR, 1);
			break;
		}
		handle_exit(vcpu);
	}
	vm_vcpu_exited(vcpu->vm);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	struct sched_param normal = { 0 };
	pthread_attr_t attr;
	int ret;

	/*
	 * Ordinary scheduling whoever starts it: warm shells are made by a
	 * SCHED_IDLE thread, whose policy a new thread would otherwise inherit.
	 */
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
	pthread_attr_setschedparam(&attr, &normal);
	ret = pthread_create(&vcpu->thread, &attr, vcpu_thread, vcpu);
	pthread_attr_destroy(&attr);
	if (ret) {
		pr_err("vCPU %u: cannot start its thread: %s", vcpu->index, strerror(ret));
		return -ret;
	}
	vcpu->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit covers a kick that lands just before the thread enters KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->started)
		pthread_kill(vcpu->thread, kick_signal());
}

void vcpu_join(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->started = false;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (!vcpu)
		return;
	vcpu_join(vcpu);
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	free(vcpu);
}
