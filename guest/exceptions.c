/*
 * exceptions: faults at CPL3 go to the runtime's CPL0 handlers and come back.
 * Each faulting instruction has an exception-table entry, so the handler
 * counts it and resumes after it.
 * LOG:    "exceptions: ok" when every count matched
 * REPORT: [0] #BP count (3: int3), [1] #DE count (2: divide by zero),
 *         [2] #UD count (1: ud2), [3] #GP count (1: hlt at CPL3),
 *         [4] #PF count (1: read of an unmapped address), [5] the #PF's CR2
 *         (EXC_UNMAPPED), [6] the #PF's error code (4: user-mode read, not present),
 *         [7] the CPL after all that (3)
 * exit:   0 when all of the above hold, else 1
 */
#include "rt.h"

/* Past the first 4 GiB, which is all the VMM's page tables map. */
#define EXC_UNMAPPED 0x8000000000ULL

static void do_int3(void)
{
	asm volatile("int3\n1:\n" RT_EXTABLE("1b", "1b"));
}

static uint64_t do_divide_by_zero(uint64_t n)
{
	uint64_t zero = 0, hi = 0;

	asm volatile("1: divq %[d]\n2:\n" RT_EXTABLE("1b", "2b")
		     : "+a"(n), "+d"(hi) : [d] "r"(zero));
	return n;
}

static void do_ud2(void)
{
	asm volatile("1: ud2\n2:\n" RT_EXTABLE("1b", "2b"));
}

static void do_hlt(void)
{
	asm volatile("1: hlt\n2:\n" RT_EXTABLE("1b", "2b"));
}

/* Returns the sentinel when the load faulted. */
static uint64_t do_read(uint64_t addr)
{
	uint64_t v = 0x5a5a;

	asm volatile("1: movq (%[a]), %[v]\n2:\n" RT_EXTABLE("1b", "2b")
		     : [v] "+r"(v) : [a] "r"(addr) : "memory");
	return v;
}

int main(void)
{
	uint64_t got[8], want[8] = { 3, 2, 1, 1, 1, EXC_UNMAPPED, 4, 3 };
	struct rt_fault pf;
	bool ok = true;

	for (int i = 0; i < 3; i++)
		do_int3();
	for (int i = 0; i < 2; i++)
		do_divide_by_zero(100 + i);
	do_ud2();
	do_hlt();
	ok &= do_read(EXC_UNMAPPED) == 0x5a5a;
	pf = rt_last_fault();
	got[0] = rt_exception_count(3);
	got[1] = rt_exception_count(0);
	got[2] = rt_exception_count(6);
	got[3] = rt_exception_count(13);
	got[4] = rt_exception_count(14);
	got[5] = pf.cr2;
	got[6] = pf.error;
	got[7] = rt_cpl();
	for (int i = 0; i < 8; i++) {
		rt_report(got[i]);
		if (got[i] != want[i]) {
			rt_printf("exceptions: value %d is 0x%lx, want 0x%lx\n", i, got[i], want[i]);
			ok = false;
		}
	}
	if (ok)
		rt_puts("exceptions: ok\n");
	return ok ? 0 : 1;
}
