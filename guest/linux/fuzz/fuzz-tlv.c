/*
 * The example fuzz target as a program in a Linux guest (docs/fuzzing.md):
 * the parser of guest/fuzz/tlv.h, its scratch buffer before a PROT_NONE
 * page, under vm-fork fuzz through the helper library (lib/vmfork_fuzz.h).
 * Built with clang's trace-pc-guard; started as init's last step.
 */
#include <stdio.h>
#include <sys/mman.h>

#include "guest/fuzz/tlv.h"
#include "guest/linux/lib/vmfork_fuzz.h"

#define FT_CRASH_STATE 0x57a7e

static unsigned runs;

int main(void)
{
	uint8_t *arena = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	const uint8_t *in;
	size_t len;

	if (arena == MAP_FAILED || mprotect(arena + 4096, 4096, PROT_NONE) < 0)
		return 100;
	in = vmfork_fuzz_start(&len);
	if (!in) {
		perror("fuzz-tlv: not under vm-fork fuzz");
		return 3;
	}
	if (++runs != 1)
		vmfork_fuzz_crash(FT_CRASH_STATE);
	tlv_parse(in, len, arena + 4096 - TLV_SCRATCH);
	vmfork_fuzz_done();
}
