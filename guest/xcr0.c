/*
 * xcr0: the XCR0 a guest writes with XSETBV stays written across VM exits, and
 * AVX then runs at CPL3. A CPU that runs KVM must intercept XSETBV in its
 * guests: QEMU 7.2's TCG, as nested SVM, did not, so KVM kept XCR0 = x87 and
 * put it back at the next entry, and the first YMM instruction after any exit
 * raised #UD (docs/kvm-in-qemu.md).
 * cpl0_setup enables AVX (guest/fork_work.h) when CPUID shows XSAVE, AVX and
 * AVX2, and reads XCR0 back at once, before any exit.
 * REPORT: [0] 1 when AVX was enabled, 0 when CPUID lacks it (nothing more then),
 *         [1] XCR0 right after XSETBV, [2] XCR0 at CPL3 after exits to the VMM
 *         (each report is one), [3] 1 after a YMM add at CPL3 gave the right sum
 * exit:   0 when [1] and [2] are 7 and the sum is right (or AVX is absent), else 1
 */
#include "fork_work.h"

static uint64_t avx, xcr0_at_once;

static inline uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

RT_CPL0 void cpl0_setup(void)
{
	avx = fw_cpl0_enable_avx();
	if (avx)
		xcr0_at_once = xgetbv0();
}

static bool ymm_add_works(void)
{
	uint64_t a[4] = { 1, 2, 3, 4 }, b[4] = { 10, 20, 30, 40 }, s[4];

	asm volatile("vmovdqu %1, %%ymm0\n vmovdqu %2, %%ymm1\n vpaddq %%ymm1, %%ymm0, %%ymm0\n"
		     "vmovdqu %%ymm0, %0\n vzeroupper"
		     : "=m"(s) : "m"(a), "m"(b) : "xmm0", "xmm1");
	return s[0] == 11 && s[1] == 22 && s[2] == 33 && s[3] == 44;
}

int main(void)
{
	uint64_t later;
	bool sum_ok;

	rt_report(avx);
	if (!avx) {
		rt_puts("xcr0: no AVX in CPUID, nothing to check\n");
		return 0;
	}
	rt_report(xcr0_at_once);
	later = xgetbv0();
	rt_report(later);
	sum_ok = (later & 7) == 7 && ymm_add_works();
	rt_report(sum_ok);
	rt_printf("xcr0: 0x%lx after XSETBV, 0x%lx after exits, YMM %s\n", xcr0_at_once, later,
		  sum_ok ? "ok" : "not usable");
	return xcr0_at_once == 7 && later == 7 && sum_ok ? 0 : 1;
}
