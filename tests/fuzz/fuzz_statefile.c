/*
 * libFuzzer target for the snapshot state-file parser (state/statefile.c).
 * The first input byte picks the mode: even, the bytes after it are parsed
 * as they are (so the checksum check stands in front); odd, they are first
 * given a valid checksum, so mutations reach the structure checks behind it.
 * Built and run by tests/fuzz/run-fuzz.sh; LLVMFuzzerInitialize seeds the
 * corpus with real state files of 1 and 3 vCPUs.
 */
#include <libfdt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/log.h"
#include "state/statefile.h"
#include "tests/fuzz/stubs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void reseal(uint8_t *fdt, size_t size)
{
	uint32_t crc;

	if (fdt_check_header(fdt) || fdt_totalsize(fdt) != size ||
	    fdt_setprop_inplace_u32(fdt, 0, "vm-fork,checksum", 0))
		return;
	crc = (uint32_t)crc32(0, fdt, (uInt)size);
	fdt_setprop_inplace_u32(fdt, 0, "vm-fork,checksum", crc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_snapshot snap;
	struct snap_meta meta;
	struct kvm_cpuid2 *cpuid;
	uint8_t *copy;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		reseal(copy, size - 1);
	if (snapfile_parse(copy, size - 1, &snap, &meta, &cpuid) == 0) {
		vm_snapshot_free(&snap);
		free(cpuid);
	}
	free(copy);
	return 0;
}

static void write_seed(const char *dir, unsigned ncpus, uint8_t mode)
{
	struct vm_snapshot s;
	struct snap_meta m = { .id = 1 };
	struct kvm_cpuid2 *c = fuzz_seed_state(&s, ncpus, 64 << 20);
	char path[4096];
	void *blob;
	size_t len;
	FILE *f;

	strcpy(m.source, "seed");
	if (snapfile_build(&s, &m, c, &blob, &len) == 0) {
		snprintf(path, sizeof(path), "%s/seed-%u-%u", dir, ncpus, mode);
		f = fopen(path, "wb");
		if (f) {
			fputc(mode, f);
			fwrite(blob, 1, len, f);
			fclose(f);
		}
		free(blob);
	}
	free(s.vcpus);
	free(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("VMFORK_FUZZ_SEEDS");

	log_set_level((enum log_level)-1); /* every refused input would print a line */
	if (dir)
		for (unsigned n = 1; n <= 3; n += 2)
			for (uint8_t mode = 0; mode < 2; mode++)
				write_seed(dir, n, mode);
	(void)argc;
	(void)argv;
	return 0;
}
