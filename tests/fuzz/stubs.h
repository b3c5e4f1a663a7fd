/* What both fuzzers share (tests/fuzz/stubs.c). */
#ifndef TESTS_FUZZ_STUBS_H
#define TESTS_FUZZ_STUBS_H

#include <stdint.h>

#include "state/vm_snapshot.h"

/* A plausible snapshot of ncpus vCPUs for seed files; returns its CPUID (2 entries), to free. */
struct kvm_cpuid2 *fuzz_seed_state(struct vm_snapshot *s, unsigned ncpus, uint64_t mem_size);

#endif
