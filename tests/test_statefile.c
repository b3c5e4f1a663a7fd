/* The snapshot state file: round trips, and every kind of damage refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/layout.h"
#include "core/log.h"
#include "devices/i8042.h"
#include "devices/uart.h"
#include "state/statefile.h"
#include "tests/harness.h"

static struct vm_snapshot snap, back;
static struct snap_meta meta, meta_back;
static struct kvm_cpuid2 *cpuid, *cpuid_back;

static void fill(void *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = (uint8_t)(seed + i * 7);
}

static void make_snapshot(unsigned ncpus)
{
	vm_snapshot_free(&snap); /* the one an earlier call made */
	free(cpuid);
	memset(&snap, 0, sizeof(snap));
	snap.ncpus = ncpus;
	snap.mem_size = 64 * MiB;
	snap.vcpus = aligned_alloc(64, ncpus * sizeof(*snap.vcpus));
	for (unsigned i = 0; i < ncpus; i++) {
		struct vcpu_state *v = &snap.vcpus[i];

		fill(v, sizeof(*v), (uint8_t)(i * 13 + 1));
		v->nmsrs = 40 + i;
		v->xsave_size = 4096 + 64 * i;
		memset((uint8_t *)v->xsave + v->xsave_size, 0, sizeof(v->xsave) - v->xsave_size);
		memset(v->msrs + v->nmsrs, 0, (STATE_MAX_MSRS - v->nmsrs) * sizeof(v->msrs[0]));
	}
	fill(&snap.vm, sizeof(snap.vm), 99);
	for (unsigned i = 0; i < STATE_NR_IRQCHIPS; i++)
		snap.vm.irqchip[i].chip_id = i;
	fill(harness_uart_state(&snap), sizeof(struct uart_state), 5);
	harness_uart_state(&snap)->rx_head = 3;
	harness_uart_state(&snap)->rx_count = 9;
	fill(harness_i8042_state(&snap), sizeof(struct i8042_state), 6);
	snap.ctl = (struct ctl_state){ 7, 2, 3, 0, 8 };
	meta = (struct snap_meta){ .created_unix = 1234, .id = 0x1122334455667788ULL,
				   .base_id = 42, .is_diff = true };
	strcpy(meta.source, "test");
	cpuid = calloc(1, sizeof(*cpuid) + 3 * sizeof(cpuid->entries[0]));
	cpuid->nent = 3;
	fill(cpuid->entries, 3 * sizeof(cpuid->entries[0]), 17);
}

static void cleanup(void)
{
	vm_snapshot_free(&snap);
	vm_snapshot_free(&back);
	free(cpuid);
	cpuid = NULL;
	free(cpuid_back);
	cpuid = cpuid_back = NULL;
}

static void quiet(void)
{
	log_set_level(LOG_ERROR - 1); /* the damage tests print an error per case */
}

TestSuite(statefile, .fini = cleanup);

static int parse(const void *blob, size_t len)
{
	vm_snapshot_free(&back);
	free(cpuid_back);
	cpuid_back = NULL;
	return snapfile_parse(blob, len, &back, &meta_back, &cpuid_back);
}

static void build(void **blob, size_t *len)
{
	cr_assert_eq(snapfile_build(&snap, &meta, cpuid, blob, len), 0);
}

#define SAME(f) cr_assert_eq(memcmp(&a->f, &b->f, sizeof(a->f)), 0, #f)

/* Field by field: padding between them is not part of the file. */
static void expect_same_vcpu(const struct vcpu_state *a, const struct vcpu_state *b)
{
	SAME(mp_state);
	SAME(regs);
	SAME(sregs);
	SAME(xcrs);
	SAME(debugregs);
	SAME(lapic);
	SAME(events);
	SAME(tsc_khz);
	SAME(nmsrs);
	SAME(xsave_size);
	cr_assert_eq(memcmp(a->msrs, b->msrs, b->nmsrs * sizeof(b->msrs[0])), 0, "msrs");
	cr_assert_eq(memcmp(a->xsave, b->xsave, b->xsave_size), 0, "xsave");
}

static void round_trip(unsigned ncpus)
{
	void *blob;
	size_t len;

	make_snapshot(ncpus);
	build(&blob, &len);
	cr_assert_eq(parse(blob, len), 0);
	cr_assert_eq(back.ncpus, ncpus);
	for (unsigned i = 0; i < ncpus; i++)
		expect_same_vcpu(&back.vcpus[i], &snap.vcpus[i]);
	cr_assert_eq(memcmp(&back.vm, &snap.vm, sizeof(snap.vm)), 0, "VM state");
	cr_assert_eq(memcmp(harness_uart_state(&back), harness_uart_state(&snap), sizeof(struct uart_state)), 0, "UART");
	cr_assert_eq(memcmp(harness_i8042_state(&back), harness_i8042_state(&snap), sizeof(struct i8042_state)), 0, "i8042");
	cr_assert_eq(memcmp(&back.ctl, &snap.ctl, sizeof(snap.ctl)), 0, "control device");
	cr_assert_eq(meta_back.id, meta.id);
	cr_assert_eq(meta_back.base_id, 42);
	cr_assert(meta_back.is_diff);
	cr_assert_str_eq(meta_back.source, "test");
	cr_assert_eq(cpuid_back->nent, 3);
	cr_assert_eq(memcmp(cpuid_back->entries, cpuid->entries, 3 * sizeof(cpuid->entries[0])), 0);
	free(blob);
}

Test(statefile, round_trip_one_vcpu)
{
	round_trip(1);
}

Test(statefile, round_trip_four_vcpus)
{
	round_trip(4);
}

Test(statefile, dtc_shows_it)
{
	char path[] = "/tmp/vm-fork-state-XXXXXX", cmd[128];
	void *blob;
	size_t len;
	int fd;

	if (access("/usr/bin/dtc", X_OK))
		cr_skip_test("skipped: no dtc (apt-get install device-tree-compiler)");
	make_snapshot(2);
	build(&blob, &len);
	fd = mkstemp(path);
	cr_assert_eq(write(fd, blob, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "dtc -q -I dtb -O dts %s | grep -q 'cpu@1'", path);
	cr_assert_eq(system(cmd), 0, "dtc decompiles it and shows cpu@1");
	unlink(path);
	free(blob);
}

Test(statefile, every_truncation_refused)
{
	void *blob;
	size_t len;

	quiet();
	make_snapshot(1);
	build(&blob, &len);
	for (size_t n = 0; n < len; n += (n < 512 ? 1 : 97))
		cr_assert_lt(parse(blob, n), 0, "truncated to %zu bytes", n);
	free(blob);
}

Test(statefile, every_flipped_byte_refused)
{
	uint8_t *blob;
	size_t len;

	quiet();
	make_snapshot(1);
	build((void **)&blob, &len);
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x40;
		cr_assert_lt(parse(blob, len), 0, "byte %zu flipped", i);
		blob[i] ^= 0x40;
	}
	cr_assert_eq(parse(blob, len), 0, "and the original still parses");
	free(blob);
}

/* Change the tree, then give it a valid checksum: only the structure checks remain. */
static void reseal(void *fdt)
{
	uint32_t crc;

	fdt_setprop_inplace_u32(fdt, 0, "vm-fork,checksum", 0);
	crc = (uint32_t)crc32(0, fdt, fdt_totalsize(fdt));
	fdt_setprop_inplace_u32(fdt, 0, "vm-fork,checksum", crc);
}

static void *editable(size_t *len)
{
	void *blob, *big;

	make_snapshot(2);
	build(&blob, len);
	big = calloc(1, *len + 64 * 1024);
	cr_assert_eq(fdt_open_into(blob, big, (int)*len + 64 * 1024), 0);
	free(blob);
	return big;
}

static void expect_refused(void *fdt, const char *what)
{
	fdt_pack(fdt);
	reseal(fdt);
	cr_expect_lt(parse(fdt, fdt_totalsize(fdt)), 0, "%s", what);
	free(fdt);
}

/* Set property name of node path to len zero bytes. */
static void zero_prop(void *fdt, const char *path, const char *name, int len)
{
	void *value;

	cr_assert_eq(fdt_setprop_placeholder(fdt, fdt_path_offset(fdt, path), name, len, &value), 0);
	memset(value, 0, (size_t)len);
}

Test(statefile, structural_damage_refused)
{
	size_t len;
	void *f;
	int node;

	quiet();
	f = editable(&len);
	fdt_setprop_u32(f, 0, "vm-fork,format", 2);
	expect_refused(f, "another format version");
	f = editable(&len);
	fdt_del_node(f, fdt_path_offset(f, "/cpus/cpu@1"));
	expect_refused(f, "fewer cpu nodes than ncpus");
	f = editable(&len);
	fdt_del_node(f, fdt_path_offset(f, "/devices"));
	expect_refused(f, "no devices node");
	f = editable(&len);
	fdt_setprop_u32(f, fdt_path_offset(f, "/meta"), "ncpus", 3);
	expect_refused(f, "ncpus mismatch");
	f = editable(&len);
	fdt_setprop_u64(f, fdt_path_offset(f, "/meta"), "mem-size", 3 * MiB);
	expect_refused(f, "bad memory size");
	f = editable(&len);
	node = fdt_path_offset(f, "/cpus/cpu@0");
	fdt_setprop(f, node, "regs", "short", 5);
	expect_refused(f, "regs of the wrong size");
	f = editable(&len);
	zero_prop(f, "/cpus/cpu@0", "msrs", 16 * 200);
	expect_refused(f, "too many MSRs");
	f = editable(&len);
	zero_prop(f, "/cpus/cpu@0", "xsave", 20000);
	expect_refused(f, "XSAVE too large");
	f = editable(&len);
	fdt_setprop_u32(f, 0, "vm-fork,checksum", 0);
	fdt_pack(f);
	cr_expect_lt(parse(f, fdt_totalsize(f)), 0, "wrong checksum");
	free(f);
}

Test(statefile, garbage_refused)
{
	uint8_t junk[8192];

	quiet();
	srand(7);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		cr_assert_lt(parse(junk, sizeof(junk)), 0);
	}
}
