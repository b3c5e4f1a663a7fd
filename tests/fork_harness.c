#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/kvm.h"
#include "fork/shells.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"
#include "vmm/vcpu.h"

void fenv_boot(struct fork_env *env, const char *name, const char *cmdline, unsigned ncpus,
	       uint64_t mem)
{
	fenv_boot_with_shells(env, name, cmdline, ncpus, mem, 0);
}

static void boot(struct fork_env *env, const char *name, const char *cmdline, unsigned ncpus,
		 uint64_t mem, unsigned shells, const struct vmm_limits *limits);

void fenv_boot_with_shells(struct fork_env *env, const char *name, const char *cmdline,
			   unsigned ncpus, uint64_t mem, unsigned shells)
{
	boot(env, name, cmdline, ncpus, mem, shells, NULL);
}

void fenv_boot_limited(struct fork_env *env, const char *name, const char *cmdline, uint64_t mem,
		       const struct vmm_limits *limits)
{
	boot(env, name, cmdline, 1, mem, 0, limits);
}

static void boot(struct fork_env *env, const char *name, const char *cmdline, unsigned ncpus,
		 uint64_t mem, unsigned shells, const struct vmm_limits *limits)
{
	char kernel[4096], console[32];
	struct vm_config cfg = {
		.mem_size = mem ? mem : 64 * MiB, .ncpus = ncpus ? ncpus : 1,
		.console = console, .kernel = kernel, .cmdline = cmdline,
	};

	SKIP_WITHOUT_KVM(); /* as the tests that boot their own guests do */
	env->console_fd = memfd_create("root-console", MFD_CLOEXEC);
	snprintf(console, sizeof(console), "fd:%d", env->console_fd);
	snprintf(kernel, sizeof(kernel), "%s/guest/%s.elf", VMFORK_BUILD_DIR, name);
	cr_assert_eq(vmm_init(&env->vmm, NULL), 0);
	env->vmm.clone_console = "none";
	if (limits)
		vmm_set_limits(&env->vmm, limits);
	cr_assert_eq(vm_create(&env->root, &env->vmm.kvm, &cfg), 0);
	cr_assert_eq(vm_boot(env->root, &cfg), 0);
	cr_assert_eq(vmm_add(&env->vmm, env->root), 0);
	if (shells) {
		cr_assert_eq(shell_pool_create(&env->vmm.shells, &env->vmm.kvm, env->root->mem.size,
					       env->root->ncpus, &env->root->cpuid_mask, shells), 0);
		shell_pool_set_template(env->vmm.shells, &env->root->mem, NULL, 0);
		cr_assert_eq(shell_pool_wait_full(env->vmm.shells, 20000), shells);
	}
	cr_assert_eq(vm_start(env->root), 0);
}

void fenv_destroy(struct fork_env *env)
{
	vmm_destroy(&env->vmm);
	close(env->console_fd);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int fenv_wait_exit(struct vm *vm, unsigned timeout_s)
{
	for (unsigned i = 0; i < harness_wait_s(timeout_s) * 500; i++) {
		if (vm_stopping(vm))
			return vm_exit_code(vm);
		sleep_ms(2);
	}
	return -1;
}

bool fenv_wait_reports(struct vm *vm, unsigned n, unsigned timeout_s)
{
	uint64_t r[VM_MAX_REPORTS];

	for (unsigned i = 0; i < harness_wait_s(timeout_s) * 1000; i++) {
		if (vm_reports(vm, r, VM_MAX_REPORTS) >= n)
			return true;
		sleep_ms(1);
	}
	return false;
}

bool fenv_wait_console(struct fork_env *env, const char *text, unsigned timeout_s)
{
	char buf[16384];

	for (unsigned i = 0; i < harness_wait_s(timeout_s) * 1000; i++) {
		ssize_t n = pread(env->console_fd, buf, sizeof(buf) - 1, 0);

		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, text))
			return true;
		sleep_ms(1);
	}
	return false;
}

bool fenv_wait_private(struct vm *vm, unsigned timeout_s)
{
	for (unsigned i = 0; i < harness_wait_s(timeout_s) * 1000; i++) {
		if (vm_private_bytes(vm) > 0)
			return true;
		sleep_ms(1);
	}
	return false;
}

uint64_t fenv_report(struct vm *vm, unsigned i)
{
	uint64_t r[VM_MAX_REPORTS];
	unsigned n = vm_reports(vm, r, VM_MAX_REPORTS);

	cr_assert_lt(i, n, "VM %llu reported %u values, wanted [%u]", (unsigned long long)vm->id,
		     n, i);
	return r[i];
}

void fenv_fork(struct vm *parent, unsigned count, struct vm **children, struct fork_stats *st)
{
	struct fork_request req = { .count = count, .start_children = true, .resume_parent = true };
	int ret = vm_fork(parent, &req, children, st);

	cr_assert_eq(ret, 0, "vm_fork: %d", ret);
}

/* The highest vector set in a LAPIC bit array (ISR at 0x100, IRR at 0x200), or -1. */
static int lapic_highest(const struct kvm_lapic_state *l, unsigned base)
{
	for (int reg = 7; reg >= 0; reg--) {
		uint32_t bits;

		memcpy(&bits, &l->regs[base + (unsigned)reg * 16], sizeof(bits));
		if (bits)
			return reg * 32 + 31 - __builtin_clz(bits);
	}
	return -1;
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], sizeof(v));
	return v;
}

/* Where each vCPU of a paused VM is and what is pending for it. */
static int note_vcpus(struct vm *vm, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int fd = vm->vcpus[i]->fd;
		struct kvm_regs r;
		struct kvm_sregs s;
		struct kvm_vcpu_events ev;
		struct kvm_lapic_state l;

		if (kvm_ioctl(fd, KVM_GET_REGS, &r) || kvm_ioctl(fd, KVM_GET_SREGS, &s) ||
		    kvm_ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) || kvm_ioctl(fd, KVM_GET_LAPIC, &l))
			continue;
		harness_note("VM %llu vCPU %u: rip %#llx rsp %#llx rflags %#llx cs %#x cr3 %#llx; "
			     "exception %u/%u #%u, irq %u #%u, shadow %u; LAPIC isr %d irr %d tpr %#x "
			     "lvtt %#x tmict %#x tmcct %#x",
			     (unsigned long long)vm->id, i, r.rip, r.rsp, r.rflags, s.cs.selector, s.cr3,
			     ev.exception.injected, ev.exception.pending, ev.exception.nr,
			     ev.interrupt.injected, ev.interrupt.nr, ev.interrupt.shadow,
			     lapic_highest(&l, 0x100), lapic_highest(&l, 0x200), lapic_reg(&l, 0x80),
			     lapic_reg(&l, 0x320), lapic_reg(&l, 0x380), lapic_reg(&l, 0x390));
	}
	return 0;
}

void fenv_note_running(struct fork_env *env)
{
	uint64_t ids[64];
	unsigned n = vmm_list(&env->vmm, ids, 64);

	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vmm_get(&env->vmm, ids[i]);

		if (!vm)
			continue;
		if (!vm_stopping(vm)) {
			harness_note("VM %llu still runs (%s), %u reports", (unsigned long long)vm->id,
				     vm_run_state_name(vm_run_state(vm)), vm_reports(vm, NULL, 0));
			vm_while_paused(vm, note_vcpus, NULL);
		}
		vmm_put(&env->vmm, vm);
	}
}
