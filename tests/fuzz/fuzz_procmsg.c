/*
 * libFuzzer target for a process clone's state file (fork/procmsg.c:
 * procmsg_state_read(), what a clone worker runs on the file a VMM sends it):
 * its header, the FDT state behind it (state/statefile.c's validator) and the
 * page ranges. The first input byte picks the mode: even, the file is read as
 * it is; odd, its header's fixed fields (magic, version, sizes, the file's
 * length) are made right first, so mutations reach the state and the ranges.
 * Built and run by tests/fuzz/run-fuzz.sh; LLVMFuzzerInitialize seeds the
 * corpus with real state files of 1 vCPU, with and without pages.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "fork/procmsg.h"
#include "state/statefile.h"
#include "tests/fuzz/stubs.h"

#define FUZZ_MEM (64ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fix_header(uint8_t *file, size_t size)
{
	struct procmsg_state_hdr h;

	if (size < sizeof(h))
		return;
	memcpy(&h, file, sizeof(h));
	h.magic = PROCMSG_MAGIC;
	h.version = PROCMSG_VERSION;
	h.hdr_size = sizeof(h);
	h.ncpus = 1;
	h.mem_size = FUZZ_MEM;
	h.file_size = size;
	memcpy(file, &h, sizeof(h));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_snapshot snap;
	struct mem_ranges ranges;
	uint64_t pages_off;
	uint8_t *copy;
	int fd;

	if (size < 1)
		return 0;
	copy = malloc(size);
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		fix_header(copy, size - 1);
	fd = memfd_create("fuzz-state", MFD_CLOEXEC);
	if (fd >= 0 && write(fd, copy, size - 1) == (ssize_t)(size - 1) &&
	    procmsg_state_read(fd, FUZZ_MEM, 1, &snap, &ranges, &pages_off) == 0) {
		vm_snapshot_free(&snap);
		mem_ranges_free(&ranges);
	}
	if (fd >= 0)
		close(fd);
	free(copy);
	return 0;
}

/* A real state file, as procmsg_state_create() makes it, with npages private pages. */
static void write_seed(const char *dir, unsigned npages, uint8_t mode)
{
	struct vm_snapshot s;
	struct kvm_cpuid2 *c = fuzz_seed_state(&s, 1, FUZZ_MEM);
	struct guest_mem mem = { .size = FUZZ_MEM, .host = calloc(1, FUZZ_MEM) };
	struct mem_ranges r = { 0 };
	char path[4096], buf[65536];
	ssize_t n;
	FILE *f;
	int fd;

	for (unsigned i = 0; i < npages; i++)
		mem_ranges_add(&r, (uint64_t)(2 * i + 1) * 4096, 4096);
	fd = procmsg_state_create(&s, c, &r, &mem);
	snprintf(path, sizeof(path), "%s/procmsg-%u-%u", dir, npages, mode);
	f = fd >= 0 ? fopen(path, "wb") : NULL;
	if (f) {
		fputc(mode, f);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)n, f);
		fclose(f);
	}
	if (fd >= 0)
		close(fd);
	mem_ranges_free(&r);
	free(mem.host);
	free(s.vcpus);
	free(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("VMFORK_FUZZ_SEEDS");

	log_set_level((enum log_level)-1); /* every refused input would print a line */
	if (dir)
		for (unsigned pages = 0; pages <= 2; pages += 2)
			for (uint8_t mode = 0; mode < 2; mode++)
				write_seed(dir, pages, mode);
	(void)argc;
	(void)argv;
	return 0;
}
