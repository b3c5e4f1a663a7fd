/*
 * sse: XMM registers and MXCSR keep their values at CPL3 across many LAPIC
 * timer interrupts (the runtime's handlers must never touch them).
 * cpl0_setup starts a 1 ms periodic timer. main loads xmm0-xmm15 with a fixed
 * pattern and MXCSR with 0x7f80 (round toward zero), spins in one asm block
 * until SSE_TICKS ticks have passed (XORing the registers with each other
 * twice, so they end where they started), then stores them back.
 * LOG:    "sse: ok, checksum 0x..." or what went wrong
 * REPORT: [0] checksum of the stored registers (SSE_EXPECTED_SUM when intact),
 *         [1] ticks that passed during the spin (>= SSE_TICKS),
 *         [2] MXCSR after the spin (0x7f80)
 * exit:   0 when the registers, MXCSR and tick count are right, else 1
 */
#include "rt.h"

#define SSE_TICKS 100
#define SSE_EXPECTED_SUM 0xdcf4d232f6142a45ULL /* checksum() of the pattern in main */
#define SSE_MXCSR 0x7f80
#define SSE_SPIN_MAX 400000000ULL /* iterations: a stopped timer must not hang us */

static uint64_t checksum(const uint64_t *w, int n)
{
	uint64_t c = 0xcbf29ce484222325ULL;

	for (int i = 0; i < n; i++)
		c = (c ^ w[i]) * 0x100000001b3ULL; /* FNV-1a, a word at a time */
	return c;
}

#define XMM_PAIR(a, b) "pxor %%xmm" #b ", %%xmm" #a "\n pxor %%xmm" #b ", %%xmm" #a "\n"

static void spin_with_xmm(const uint64_t *in, uint64_t *out, uint64_t until, uint32_t *mxcsr)
{
	uint64_t budget = SSE_SPIN_MAX;
	uint32_t mx_default = 0x1f80;

	asm volatile(
		"movdqu 0(%[in]), %%xmm0\n movdqu 16(%[in]), %%xmm1\n"
		"movdqu 32(%[in]), %%xmm2\n movdqu 48(%[in]), %%xmm3\n"
		"movdqu 64(%[in]), %%xmm4\n movdqu 80(%[in]), %%xmm5\n"
		"movdqu 96(%[in]), %%xmm6\n movdqu 112(%[in]), %%xmm7\n"
		"movdqu 128(%[in]), %%xmm8\n movdqu 144(%[in]), %%xmm9\n"
		"movdqu 160(%[in]), %%xmm10\n movdqu 176(%[in]), %%xmm11\n"
		"movdqu 192(%[in]), %%xmm12\n movdqu 208(%[in]), %%xmm13\n"
		"movdqu 224(%[in]), %%xmm14\n movdqu 240(%[in]), %%xmm15\n"
		"ldmxcsr %[mx]\n"
		"1:\n"
		XMM_PAIR(0, 1) XMM_PAIR(1, 2) XMM_PAIR(2, 3) XMM_PAIR(3, 4)
		XMM_PAIR(4, 5) XMM_PAIR(5, 6) XMM_PAIR(6, 7) XMM_PAIR(7, 8)
		XMM_PAIR(8, 9) XMM_PAIR(9, 10) XMM_PAIR(10, 11) XMM_PAIR(11, 12)
		XMM_PAIR(12, 13) XMM_PAIR(13, 14) XMM_PAIR(14, 15) XMM_PAIR(15, 0)
		"cmp %[until], %[ticks]\n jae 2f\n"
		"dec %[budget]\n jnz 1b\n"
		"2:\n"
		"stmxcsr %[mx]\n ldmxcsr %[mxd]\n"
		"movdqu %%xmm0, 0(%[out])\n movdqu %%xmm1, 16(%[out])\n"
		"movdqu %%xmm2, 32(%[out])\n movdqu %%xmm3, 48(%[out])\n"
		"movdqu %%xmm4, 64(%[out])\n movdqu %%xmm5, 80(%[out])\n"
		"movdqu %%xmm6, 96(%[out])\n movdqu %%xmm7, 112(%[out])\n"
		"movdqu %%xmm8, 128(%[out])\n movdqu %%xmm9, 144(%[out])\n"
		"movdqu %%xmm10, 160(%[out])\n movdqu %%xmm11, 176(%[out])\n"
		"movdqu %%xmm12, 192(%[out])\n movdqu %%xmm13, 208(%[out])\n"
		"movdqu %%xmm14, 224(%[out])\n movdqu %%xmm15, 240(%[out])\n"
		: [budget] "+r"(budget), [mx] "+m"(*mxcsr)
		: [in] "r"(in), [out] "r"(out), [until] "r"(until), [mxd] "m"(mx_default),
		  [ticks] "m"(rt_tick_count)
		: "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

RT_CPL0 void cpl0_setup(void)
{
	rt_timer_start(1000);
}

int main(void)
{
	uint64_t in[32], out[32], start, ticks;
	uint32_t mxcsr = SSE_MXCSR;
	bool ok;

	for (int i = 0; i < 32; i++)
		in[i] = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
	start = rt_ticks();
	spin_with_xmm(in, out, start + SSE_TICKS, &mxcsr);
	ticks = rt_ticks() - start;
	ok = !memcmp(in, out, sizeof(in)) && checksum(out, 32) == SSE_EXPECTED_SUM &&
	     mxcsr == SSE_MXCSR && ticks >= SSE_TICKS;
	rt_printf("sse: %s, checksum 0x%lx (want 0x%llx), %lu ticks, mxcsr 0x%x\n",
		  ok ? "ok" : "FAILED", checksum(out, 32), SSE_EXPECTED_SUM, ticks, mxcsr);
	rt_report(checksum(out, 32));
	rt_report(ticks);
	rt_report(mxcsr);
	return ok ? 0 : 1;
}
