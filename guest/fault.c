/*
 * fault: an exception nobody expected ends the VM with RT_EXIT_FAULT_BASE +
 * vector (0x70 + vector) after the runtime logs "rt: unexpected ...".
 * cmdline: "fault=KIND" (default ud):
 *   ud    ud2 at CPL3             -> exit 0x76
 *   de    divide by zero at CPL3  -> exit 0x70
 *   bp    int3 at CPL3            -> exit 0x73
 *   gp    hlt at CPL3             -> exit 0x7d
 *   pf    read of an unmapped address (512 GiB) at CPL3 -> exit 0x7e
 *   cpl0  ud2 in cpl0_setup       -> exit 0x76
 *   df    at CPL0, a push onto an unmapped stack: the #PF cannot be delivered
 *         either, so #DF, taken on its IST stack -> exit 0x78
 *   panic RT_ASSERT(0) at CPL3    -> exit 0x6d (RT_EXIT_PANIC)
 *   none  no fault                -> exit 0
 * An unknown KIND exits 2.
 * REPORT: [0] 1 just before the fault (nothing after it)
 */
#include "rt.h"

#define FAULT_UNMAPPED 0x8000000000ULL

static bool kind_is(const char *kind)
{
	size_t len, klen = strlen(kind);
	const char *v = rt_arg("fault", &len);

	if (!v)
		return !strncmp(kind, "ud", 3);
	return len == klen && !strncmp(v, kind, klen);
}

RT_CPL0 void cpl0_setup(void)
{
	if (kind_is("cpl0"))
		asm volatile("ud2");
	if (kind_is("df"))
		asm volatile("mov %0, %%rsp\n push %%rax" : : "r"(FAULT_UNMAPPED) : "memory");
}

int main(void)
{
	uint64_t zero = 0, n = 1, hi = 0;

	rt_report(1);
	if (kind_is("ud"))
		asm volatile("ud2");
	else if (kind_is("de"))
		asm volatile("divq %2" : "+a"(n), "+d"(hi) : "r"(zero));
	else if (kind_is("bp"))
		asm volatile("int3");
	else if (kind_is("gp"))
		asm volatile("hlt");
	else if (kind_is("pf"))
		return (int)*(volatile uint64_t *)FAULT_UNMAPPED;
	else if (kind_is("panic"))
		RT_ASSERT(zero);
	else if (kind_is("none"))
		return 0;
	else
		return 2;
	rt_puts("fault: still running after the fault\n");
	return 1;
}
