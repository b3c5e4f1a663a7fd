/*
 * The example fuzz target as a Linux process, for afl-clang-fast: the same
 * parser as the guest (tlv.h), its scratch buffer before a PROT_NONE page
 * as in the guest, the input from the file named (afl-fuzz's @@) or stdin.
 * The benchmark times afl-fuzz on it beside afl-fuzz on vm-fork fuzz.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tlv.h"

int main(int argc, char **argv)
{
	static uint8_t in[1 << 20];
	uint8_t *arena = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = argc > 1 ? open(argv[1], O_RDONLY) : 0;
	ssize_t n;

	if (arena == MAP_FAILED || fd < 0 || mprotect(arena + 4096, 4096, PROT_NONE) < 0)
		return 100;
	n = read(fd, in, sizeof(in));
	if (n < 0)
		return 100;
	return tlv_parse(in, (size_t)n, arena + 4096 - TLV_SCRATCH) == 0 ? 0 : 1;
}
