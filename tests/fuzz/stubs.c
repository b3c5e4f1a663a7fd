/*
 * What both fuzzers link beside the parser: the one library function it calls
 * outside statefile.c, so they link without the VMM (vm_snapshot.c needs
 * devices and KVM), doing what state/vm_snapshot.c's does; and the state
 * their seed files hold.
 */
#include <stdlib.h>

#include "state/vm_snapshot.h"
#include "tests/fuzz/stubs.h"

void vm_snapshot_free(struct vm_snapshot *snap)
{
	free(snap->vcpus);
	snap->vcpus = NULL;
}

struct kvm_cpuid2 *fuzz_seed_state(struct vm_snapshot *s, unsigned ncpus, uint64_t mem_size)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 2 * sizeof(c->entries[0]));

	*s = (struct vm_snapshot){ .ncpus = ncpus, .mem_size = mem_size };
	s->vcpus = calloc(ncpus, sizeof(*s->vcpus));
	for (unsigned i = 0; i < ncpus; i++) {
		s->vcpus[i].nmsrs = 4;
		s->vcpus[i].xsave_size = 4096;
	}
	for (unsigned i = 0; i < 3; i++)
		s->vm.irqchip[i].chip_id = i;
	c->nent = 2;
	return c;
}
