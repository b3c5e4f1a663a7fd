#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/shells.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"

void fenv_boot(struct fork_env *env, const char *name, const char *cmdline, unsigned ncpus,
	       uint64_t mem)
{
	fenv_boot_with_shells(env, name, cmdline, ncpus, mem, 0);
}

void fenv_boot_with_shells(struct fork_env *env, const char *name, const char *cmdline,
			   unsigned ncpus, uint64_t mem, unsigned shells)
{
	char kernel[4096], console[32];
	struct vm_config cfg = {
		.mem_size = mem ? mem : 64 * MiB, .ncpus = ncpus ? ncpus : 1,
		.console = console, .kernel = kernel, .cmdline = cmdline,
	};

	env->console_fd = memfd_create("root-console", MFD_CLOEXEC);
	snprintf(console, sizeof(console), "fd:%d", env->console_fd);
	snprintf(kernel, sizeof(kernel), "%s/guest/%s.elf", VMFORK_BUILD_DIR, name);
	cr_assert_eq(vmm_init(&env->vmm, NULL), 0);
	env->vmm.clone_console = "none";
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
	for (unsigned i = 0; i < timeout_s * 500; i++) {
		if (vm_stopping(vm))
			return vm_exit_code(vm);
		sleep_ms(2);
	}
	return -1;
}

bool fenv_wait_reports(struct vm *vm, unsigned n, unsigned timeout_s)
{
	uint64_t r[VM_MAX_REPORTS];

	for (unsigned i = 0; i < timeout_s * 1000; i++) {
		if (vm_reports(vm, r, VM_MAX_REPORTS) >= n)
			return true;
		sleep_ms(1);
	}
	return false;
}

bool fenv_wait_console(struct fork_env *env, const char *text, unsigned timeout_s)
{
	char buf[16384];

	for (unsigned i = 0; i < timeout_s * 1000; i++) {
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
	for (unsigned i = 0; i < timeout_s * 1000; i++) {
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
