/*
 * cpuid: what CPUID tells the guest, read at CPL0 (on nested hosts of the PVM
 * kind CPUID at CPL3 is not intercepted and shows the host's values).
 * REPORT: [0] leaf 1 ECX, [1] leaf 1 EBX, [2] leaf 7.0 EBX, [3] leaf 0x40000000 EBX
 *         (KVM's signature "KVMK"), [4] leaf 0xB.1 EBX (logical CPUs in the package)
 * exit:   0
 */
#include "rt.h"

static uint32_t values[5];

static RT_CPL0 void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

RT_CPL0 void cpl0_setup(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	values[0] = r[2];
	values[1] = r[1];
	cpuid(7, 0, r);
	values[2] = r[1];
	cpuid(0x40000000, 0, r);
	values[3] = r[1];
	cpuid(0xb, 1, r);
	values[4] = r[1];
}

int main(void)
{
	for (unsigned i = 0; i < 5; i++)
		rt_report(values[i]);
	return 0;
}
