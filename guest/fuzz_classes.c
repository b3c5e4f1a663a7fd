/*
 * fuzz_classes: one run of each way a fuzzed run can end, for the tests of
 * vm-fork fuzz's crash classes (docs/fuzzing.md). The input's first byte
 * picks it:
 *   'd' FUZZ_DONE              'x' EXIT 7
 *   'z' #DE (divide by zero)   'u' #UD (ud2)        'b' #BP (int3)
 *   'p' #PF (a guard page)     'c' crash report 0xc0de
 *   't' triple fault: an empty IDT at CPL0, then an int3
 *   'm' a second mark, then FUZZ_DONE (crash 0xbad if it changed the mark's result)
 *   'r' a RESET of its own, then FUZZ_DONE (honoured, it would loop: a hang)
 * Anything else: FUZZ_DONE. exit 3 when not under vm-fork fuzz.
 */
#include "rt.h"

static uint8_t guarded[2 * 4096] __attribute__((aligned(4096)));

void cpl0_setup(void)
{
	if (!rt_guard_page((uintptr_t)guarded + 4096))
		rt_panic("fuzz_classes: no guard page");
}

/* No IDT: the int3 cannot be delivered (#GP), nor can that (#DF): a triple fault. */
static RT_CPL0 uint64_t triple_fault(uint64_t unused)
{
	static const struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = { 0, 0 };

	asm volatile("lidt %0; int3" : : "m"(none));
	return unused;
}

int main(void)
{
	size_t len;
	const uint8_t *in = rt_fuzz_start(&len);
	volatile unsigned zero = 0;

	if (!in)
		return 3;
	switch (len ? in[0] : 0) {
	case 'x': rt_exit(7);
	case 'z': return (int)(100 / zero);
	case 'u': asm volatile("ud2"); break;
	case 'b': asm volatile("int3"); break;
	case 'p': ((volatile uint8_t *)guarded)[4096] = 1; break;
	case 'c': rt_fuzz_crash(0xc0de);
	case 't': rt_cpl0_call(triple_fault, 0); break;
	case 'm':
		rt_ctl_write(VMFORK_CTL_SNAPSHOT, 0);
		if (rt_ctl_read(VMFORK_CTL_SNAPSHOT_RESULT))
			rt_fuzz_crash(0xbad);
		break;
	case 'r': rt_ctl_write(VMFORK_CTL_RESET, 1); break;
	}
	rt_fuzz_done();
}
