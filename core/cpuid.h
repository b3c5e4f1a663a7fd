/*
 * The CPUID a vCPU sees. Policy: start from KVM_GET_SUPPORTED_CPUID (what
 * this host and KVM can virtualise), then
 *  - set the hypervisor bit (leaf 1 ECX[31]) and keep KVM's leaves at 0x40000000,
 *  - describe N vCPUs as N cores of one package, one thread each: APIC id =
 *    vCPU index in leaf 1 EBX, leaves 0xB/0x1F, leaf 4 and 0x80000008,
 *  - clear every feature the user masks (--cpuid-mask, see cpuid_mask_parse()).
 */
#ifndef CORE_CPUID_H
#define CORE_CPUID_H

#include <linux/kvm.h>
#include <stdint.h>

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

struct cpuid_mask_bit {
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint8_t bit;
};

#define CPUID_MAX_MASKS 64

struct cpuid_mask {
	unsigned n;
	struct cpuid_mask_bit bits[CPUID_MAX_MASKS];
};

/*
 * Parse a comma-separated list of features to hide: names ("avx512f",
 * "x2apic", ...: cpuid_feature_names() lists them) or raw bits written
 * LEAF[.SUBLEAF]:REG:BIT, e.g. "0x7.0:ebx:16". Returns 0 or -EINVAL.
 */
int cpuid_mask_parse(const char *spec, struct cpuid_mask *mask);
/* The names cpuid_mask_parse() knows, space separated. */
const char *cpuid_feature_names(void);

/*
 * A newly allocated copy of supported, shaped by the policy for vCPU
 * vcpu_index of ncpus. Returns NULL when out of memory.
 */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned vcpu_index,
				  unsigned ncpus, const struct cpuid_mask *mask);

/* The entry for (leaf, subleaf), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t leaf, uint32_t subleaf);

#endif
