/*
 * Warm shells: VMs created ahead of time (KVM VM, vCPUs with their CPUID,
 * devices, memory slots over a reserved host range), so that a fork only
 * loads state into one. KVM_CREATE_VM/VCPU and KVM_SET_USER_MEMORY_REGION
 * (which grows with RAM size) are paid here, off the fork's critical path.
 * When the pool knows the frozen base the next forks will use (a template),
 * it also maps that base into each shell ahead of time, so a fork from it
 * costs the same whatever the RAM size. A background thread keeps the pool
 * at its target.
 */
#ifndef SNAPSHOT_SHELLS_H
#define SNAPSHOT_SHELLS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/cpuid.h"
#include "vmm/kvm.h"
#include "vmm/memory.h"

struct vm;
struct shell_pool;

int shell_pool_create(struct shell_pool **out, struct kvm_host *kvm, uint64_t mem_size,
		      unsigned ncpus, const struct cpuid_mask *mask, unsigned target);
/*
 * A ready shell of parent's shape, or NULL (none ready, or another shape).
 * *base_mapped tells whether parent's frozen base is already mapped in it.
 */
struct vm *shell_pool_take(struct shell_pool *pool, const struct vm *parent, bool *base_mapped);
/* Map this frozen base into shells ahead of time from now on. */
void shell_pool_set_base(struct shell_pool *pool, const struct guest_mem *base);
/* Shells ready now (for tests and the benchmark). */
unsigned shell_pool_ready(struct shell_pool *pool);
/* Wait until the pool holds its target (or timeout_ms passes); returns the count ready. */
unsigned shell_pool_wait_full(struct shell_pool *pool, unsigned timeout_ms);
void shell_pool_destroy(struct shell_pool *pool);

#endif
