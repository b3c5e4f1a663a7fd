/* Booting a guest into a struct vmm and forking it, for the fork tests. */
#ifndef TESTS_FORK_HARNESS_H
#define TESTS_FORK_HARNESS_H

#include <stdint.h>

#include "fork/fork.h"
#include "fork/vmm.h"
#include "vmm/vm.h"

struct fork_env {
	struct vmm vmm;
	struct vm *root;
	int console_fd;           /* the root's console (a memfd) */
};

/* vmm_init + boot build/guest/NAME.elf as VM 0 and start it. */
void fenv_boot(struct fork_env *env, const char *name, const char *cmdline, unsigned ncpus,
	       uint64_t mem);
/* The same with a pool of `shells` warm shells that premapped its RAM before it starts. */
void fenv_boot_with_shells(struct fork_env *env, const char *name, const char *cmdline,
			   unsigned ncpus, uint64_t mem, unsigned shells);
/* One vCPU, no shells, and the VMM's limits set before the guest starts. */
void fenv_boot_limited(struct fork_env *env, const char *name, const char *cmdline, uint64_t mem,
		       const struct vmm_limits *limits);
void fenv_destroy(struct fork_env *env);
/* Wait for the VM to stop (timeout_s); returns its exit status, -1 on a timeout. */
int fenv_wait_exit(struct vm *vm, unsigned timeout_s);
/* Wait until the VM has reported at least n values. */
bool fenv_wait_reports(struct vm *vm, unsigned n, unsigned timeout_s);
/* Wait until the root VM's console holds text (the guest says it reached a point). */
bool fenv_wait_console(struct fork_env *env, const char *text, unsigned timeout_s);
/* Wait until vm has written a page of its own (its RAM is private after a fork or restore). */
bool fenv_wait_private(struct vm *vm, unsigned timeout_s);
/* Report i of vm. */
uint64_t fenv_report(struct vm *vm, unsigned i);
/* Fork count children, asserting success. */
void fenv_fork(struct vm *parent, unsigned count, struct vm **children, struct fork_stats *st);
/* A fresh console spec "fd:N" on a new memfd for clones; returns the memfd. */
int fenv_clone_consoles(struct fork_env *env);
/* Say, for each VM still running, where its vCPUs are and what is pending (a hang's clues). */
void fenv_note_running(struct fork_env *env);

#endif
