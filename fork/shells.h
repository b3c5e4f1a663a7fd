/*
 * Warm shells: VMs created ahead of time (KVM VM, vCPUs with their CPUID and
 * parked threads, devices, memory slots over a reserved host range), so that
 * a fork does not pay KVM_CREATE_VM/VCPU or KVM_SET_USER_MEMORY_REGION (which
 * grows with RAM size, and whose first use costs milliseconds here).
 *
 * When the pool knows a template (a paused VM whose frozen base and captured
 * state forks reuse), it goes further in the background: it maps that base
 * into each shell and loads the template's state into it, so a fork from the
 * template only gives the shell its identity and console and wakes it; that
 * costs the same whatever the RAM size.
 */
#ifndef FORK_SHELLS_H
#define FORK_SHELLS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cpuid.h"
#include "core/kvm.h"
#include "core/memory.h"

struct vm;
struct vm_snapshot;
struct shell_pool;

int shell_pool_create(struct shell_pool **out, struct kvm_host *kvm, uint64_t mem_size,
		      unsigned ncpus, const struct cpuid_mask *mask, unsigned target);

/* What a shell taken from the pool already holds. */
struct shell_fit {
	bool base_mapped;     /* the parent's frozen base is mapped */
	bool state_loaded;    /* the template state `serial` is loaded */
};

/*
 * A ready shell of parent's shape, or NULL (none ready, or another shape).
 * serial names the parent's captured state (0: none).
 */
struct vm *shell_pool_take(struct shell_pool *pool, const struct vm *parent, uint64_t serial,
			   struct shell_fit *fit);
/*
 * A ready shell of parent's shape that has parent's RAM file premapped and
 * no state loaded, or NULL (none such; nothing is taken then).
 */
struct vm *shell_pool_take_mapped(struct shell_pool *pool, const struct vm *parent);
/*
 * From now on prepare shells for this template: its base and its captured
 * state (copied; NULL and serial 0 when there is none yet). The base may
 * still be a running VM's live RAM: shells then premap it, so that VM's
 * first fork finds it mapped (guest_mem_premap() says why that is safe).
 */
void shell_pool_set_template(struct shell_pool *pool, const struct guest_mem *base,
			     const struct vm_snapshot *state, uint64_t serial);
/* Shells ready now, and how many of those are fully prepared for the template. */
unsigned shell_pool_ready(struct shell_pool *pool, unsigned *prepared);
unsigned shell_pool_target(struct shell_pool *pool);
/* Wait until the pool holds its target, all prepared (or timeout_ms passes); returns ready. */
unsigned shell_pool_wait_full(struct shell_pool *pool, unsigned timeout_ms);
void shell_pool_destroy(struct shell_pool *pool);

#endif
