/* The CPUID policy and the --cpuid-mask syntax, on a synthetic supported-CPUID table. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "core/cpuid.h"

static struct kvm_cpuid2 *fake_supported(void)
{
	static const struct kvm_cpuid_entry2 entries[] = {
		{ .function = 0, .eax = 0x1f },
		{ .function = 1, .eax = 0x806f8, .ebx = 0x00000800, .ecx = 0x7ffefbff, .edx = 0xbfebfbff },
		{ .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x121 },
		{ .function = 7, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 0xffffffff },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
		{ .function = 0x80000008, .ecx = 0xff },
	};
	size_t n = sizeof(entries) / sizeof(entries[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(entries));

	c->nent = (uint32_t)n;
	memcpy(c->entries, entries, sizeof(entries));
	return c;
}

Test(cpuid, topology_for_four_vcpus)
{
	struct kvm_cpuid2 *sup = fake_supported();
	struct kvm_cpuid2 *c = cpuid_for_vcpu(sup, 3, 4, NULL);
	struct kvm_cpuid_entry2 *e;

	cr_assert_not_null(c);
	e = cpuid_find(c, 1, 0);
	cr_assert_eq(e->ebx >> 24, 3, "APIC id is the vCPU index");
	cr_assert_eq((e->ebx >> 16) & 0xff, 4);
	cr_assert(e->ecx & (1u << 31), "hypervisor bit set");
	cr_assert(e->edx & (1u << 28), "HTT set so EBX[23:16] counts");
	cr_assert_eq(cpuid_find(c, 4, 0)->eax >> 26, 3);
	cr_assert_eq(cpuid_find(c, 0xb, 0)->edx, 3);
	cr_assert_eq(cpuid_find(c, 0xb, 1)->ebx, 4);
	cr_assert_eq(cpuid_find(c, 0xb, 1)->eax, 2, "2 bits of APIC id for 4 cores");
	cr_assert_eq(cpuid_find(c, 0xb, 2)->ecx, 2, "level 2 is invalid");
	cr_assert_eq(cpuid_find(c, 0x80000008, 0)->ecx & 0xff, 3);
	cr_assert_eq(cpuid_find(c, 0x40000000, 0)->ebx, 0x4b4d564b, "KVM leaves kept");
	cr_assert_eq(cpuid_find(sup, 1, 0)->ebx, 0x800, "the supported table is not changed");
	free(c);
	free(sup);
}

Test(cpuid, mask_by_name_and_raw)
{
	struct kvm_cpuid2 *sup = fake_supported();
	struct cpuid_mask mask;
	struct kvm_cpuid2 *c;

	cr_assert_eq(cpuid_mask_parse("avx512f,x2apic,0x7.0:ebx:5,1:edx:0", &mask), 0);
	cr_assert_eq(mask.n, 4);
	c = cpuid_for_vcpu(sup, 0, 1, &mask);
	cr_assert_eq(cpuid_find(c, 7, 0)->ebx & (1u << 16), 0);
	cr_assert_eq(cpuid_find(c, 7, 0)->ebx & (1u << 5), 0);
	cr_assert_neq(cpuid_find(c, 7, 0)->ebx & (1u << 4), 0, "other bits untouched");
	cr_assert_eq(cpuid_find(c, 1, 0)->ecx & (1u << 21), 0);
	cr_assert_eq(cpuid_find(c, 1, 0)->edx & 1u, 0);
	free(c);
	free(sup);
}

Test(cpuid, mask_rejects_garbage)
{
	static const char *const bad[] = {
		"nosuchfeature", "0x7:ebx", "0x7:ebx:32", "0x7:exx:1", "7.x:ebx:1", "7:ebx:1:2",
		"7:ebx:-1", "", ",",
	};
	struct cpuid_mask mask;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = cpuid_mask_parse(bad[i], &mask);

		cr_expect(ret == -EINVAL || (ret == 0 && mask.n == 0), "'%s' -> %d", bad[i], ret);
	}
	cr_assert_eq(cpuid_mask_parse("nosuchfeature", &mask), -EINVAL);
}
