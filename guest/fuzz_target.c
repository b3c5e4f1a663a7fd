/*
 * fuzz_target: the example target of vm-fork fuzz (docs/fuzzing.md), built
 * with clang's -fsanitize-coverage=trace-pc-guard. It parses its input with
 * guest/fuzz/tlv.h, whose planted bugs a fuzzer finds: an out-of-bounds
 * write that runs into a guard page (#PF: a crash) and a loop that never
 * ends (a hang).
 *
 * It also counts its runs in its own memory: every run starts from the same
 * mark, so the count is 1 in each, and anything else is reported as crash
 * FT_CRASH_STATE.
 * exit: 3 when not under vm-fork fuzz.
 */
#include "rt.h"
#include "fuzz/tlv.h"

#define FT_CRASH_STATE 0x57a7e

/* The scratch buffer ends where a guard page starts. */
static uint8_t arena[2 * 4096] __attribute__((aligned(4096)));
static uint32_t runs;

void cpl0_setup(void)
{
	if (!rt_guard_page((uintptr_t)arena + 4096))
		rt_panic("fuzz_target: no guard page");
}

int main(void)
{
	size_t len;
	const uint8_t *in = rt_fuzz_start(&len);

	if (!in) {
		rt_printf("fuzz_target: not under vm-fork fuzz\n");
		return 3;
	}
	if (++runs != 1)
		rt_fuzz_crash(FT_CRASH_STATE);
	tlv_parse(in, len, arena + 4096 - TLV_SCRATCH);
	rt_fuzz_done();
}
