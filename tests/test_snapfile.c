/*
 * The state file (state/statefile.h) at its edges, complementing
 * test_statefile.c: every limit accepted at its value and refused one past it,
 * each range and size check on its own behind a valid checksum, and a
 * mutation of every byte, resealed, either refused or accepted only in range.
 */
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

static struct vm_snapshot in, out;
static struct snap_meta meta_in, meta_out;
static struct kvm_cpuid2 *cpuid_in, *cpuid_out;

static void pattern(void *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = (uint8_t)(seed ^ (i * 31 + (i >> 8)));
}

static void free_all(void)
{
	vm_snapshot_free(&in);
	vm_snapshot_free(&out);
	free(cpuid_in);
	free(cpuid_out);
	cpuid_in = cpuid_out = NULL;
}

/* A valid snapshot of ncpus vCPUs, each filled with its own byte pattern. */
static void make_input(unsigned ncpus, uint32_t nmsrs, uint32_t xsave_size, uint32_t nent)
{
	free_all();
	memset(&in, 0, sizeof(in));
	in.ncpus = ncpus;
	in.mem_size = 256 * MiB;
	in.vcpus = aligned_alloc(64, ncpus * sizeof(*in.vcpus));
	cr_assert(in.vcpus);
	for (unsigned i = 0; i < ncpus; i++) {
		pattern(&in.vcpus[i], sizeof(in.vcpus[i]), (uint8_t)(0x40 + i));
		in.vcpus[i].nmsrs = nmsrs;
		in.vcpus[i].xsave_size = xsave_size;
	}
	pattern(&in.vm, sizeof(in.vm), 0x11);
	for (unsigned i = 0; i < STATE_NR_IRQCHIPS; i++)
		in.vm.irqchip[i].chip_id = i;
	pattern(harness_uart_state(&in), sizeof(struct uart_state), 0x22);
	harness_uart_state(&in)->rx_head = 15;
	harness_uart_state(&in)->rx_count = 16;
	pattern(harness_i8042_state(&in), sizeof(struct i8042_state), 0x33);
	in.ctl = (struct ctl_state){ 0x1000000000000001ULL, 2, 3, UINT64_MAX, 5 };
	meta_in = (struct snap_meta){ .created_unix = 1700000000, .id = 0xfeedfacecafebeefULL };
	memset(meta_in.source, 'v', sizeof(meta_in.source) - 1); /* the longest allowed */
	cpuid_in = calloc(1, sizeof(*cpuid_in) + nent * sizeof(cpuid_in->entries[0]));
	cr_assert(cpuid_in);
	cpuid_in->nent = nent;
	pattern(cpuid_in->entries, nent * sizeof(cpuid_in->entries[0]), 0x55);
}

static void quiet(void)
{
	log_set_level(LOG_ERROR - 1); /* every refusal prints an error */
}

TestSuite(snapfile, .init = quiet, .fini = free_all);

/* Parse into out; a refusal must leave nothing allocated behind. */
static int parse_blob(const void *blob, size_t len)
{
	int ret;

	vm_snapshot_free(&out);
	free(cpuid_out);
	cpuid_out = NULL;
	ret = snapfile_parse(blob, len, &out, &meta_out, &cpuid_out);
	if (ret) {
		cr_assert_null(out.vcpus, "a refused file leaves no vCPUs");
		cr_assert_null(cpuid_out, "a refused file leaves no CPUID");
	}
	return ret;
}

static void *build_blob(size_t *len)
{
	void *blob;

	cr_assert_eq(snapfile_build(&in, &meta_in, cpuid_in, &blob, len), 0);
	return blob;
}

static void expect_same_as_input(void)
{
	cr_assert_eq(out.ncpus, in.ncpus);
	for (unsigned i = 0; i < in.ncpus; i++) {
		const struct vcpu_state *a = &in.vcpus[i], *b = &out.vcpus[i];

		cr_assert_eq(b->nmsrs, a->nmsrs, "vCPU %u", i);
		cr_assert_eq(b->xsave_size, a->xsave_size, "vCPU %u", i);
		cr_assert_eq(memcmp(&a->regs, &b->regs, sizeof(a->regs)), 0, "vCPU %u", i);
		cr_assert_eq(memcmp(&a->lapic, &b->lapic, sizeof(a->lapic)), 0, "vCPU %u", i);
		cr_assert_eq(memcmp(a->msrs, b->msrs, a->nmsrs * sizeof(a->msrs[0])), 0);
		cr_assert_eq(memcmp(a->xsave, b->xsave, a->xsave_size), 0, "vCPU %u", i);
	}
	cr_assert_eq(cpuid_out->nent, cpuid_in->nent);
	cr_assert_eq(memcmp(cpuid_out->entries, cpuid_in->entries,
			    cpuid_in->nent * sizeof(cpuid_in->entries[0])), 0);
}

Test(snapfile, meta_round_trip)
{
	size_t len;
	void *blob;

	make_input(2, 3, STATE_XSAVE_MIN, 1);
	blob = build_blob(&len);
	cr_assert_eq(parse_blob(blob, len), 0);
	cr_assert_eq(meta_out.mem_size, 256 * MiB);
	cr_assert_eq(meta_out.mem_file_size, 256 * MiB);
	cr_assert_eq(meta_out.ncpus, 2);
	cr_assert_eq(meta_out.created_unix, 1700000000);
	cr_assert_eq(meta_out.id, 0xfeedfacecafebeefULL);
	cr_assert_eq(meta_out.base_id, 0);
	cr_assert_not(meta_out.is_diff);
	cr_assert_str_eq(meta_out.source, meta_in.source);
	cr_assert_eq(memcmp(&out.ctl, &in.ctl, sizeof(in.ctl)), 0);
	cr_assert_eq(harness_uart_state(&out)->rx_head, 15);
	cr_assert_eq(harness_uart_state(&out)->rx_count, 16);
	free(blob);
}

Test(snapfile, every_limit_accepted_at_its_value)
{
	size_t len;
	void *blob;

	make_input(VM_MAX_CPUS, STATE_MAX_MSRS, STATE_XSAVE_MAX, STATEFILE_MAX_CPUID);
	in.mem_size = VM_MAX_MEM;
	blob = build_blob(&len);
	cr_assert_eq(parse_blob(blob, len), 0);
	cr_assert_eq(meta_out.mem_size, VM_MAX_MEM);
	expect_same_as_input();
	free(blob);
	make_input(1, 0, STATE_XSAVE_MIN, 1);
	in.mem_size = VM_MIN_MEM;
	blob = build_blob(&len);
	cr_assert_eq(parse_blob(blob, len), 0, "no MSRs, the smallest XSAVE and RAM");
	expect_same_as_input();
	free(blob);
}

/* The builder writes what it is given: the parser alone stands one past each limit. */
Test(snapfile, one_past_a_limit_refused_as_built)
{
	size_t len;
	void *blob;

	make_input(VM_MAX_CPUS + 1, 1, STATE_XSAVE_MIN, 1);
	blob = build_blob(&len);
	cr_assert_eq(parse_blob(blob, len), -EBADMSG, "%d vCPUs", VM_MAX_CPUS + 1);
	free(blob);
	make_input(1, 1, STATE_XSAVE_MIN, STATEFILE_MAX_CPUID + 1);
	blob = build_blob(&len);
	cr_assert_eq(parse_blob(blob, len), -EBADMSG, "%d CPUID entries", STATEFILE_MAX_CPUID + 1);
	free(blob);
	make_input(1, 1, STATE_XSAVE_MIN, 1);
	in.mem_size = VM_MAX_MEM + 2 * MiB;
	blob = build_blob(&len);
	cr_assert_eq(parse_blob(blob, len), -EBADMSG, "RAM past the most");
	free(blob);
}

/* A tree of two vCPUs opened for editing, with room to grow. */
#define ROOM (128 * 1024)

static void *open_tree(void)
{
	size_t len;
	void *blob, *fdt;

	make_input(2, 4, STATE_XSAVE_MIN, 2);
	blob = build_blob(&len);
	fdt = calloc(1, len + ROOM);
	cr_assert_eq(fdt_open_into(blob, fdt, (int)(len + ROOM)), 0);
	free(blob);
	return fdt;
}

/* Pack and give it a valid checksum (the rule in statefile.h), then parse it. */
static int seal_and_parse(void *fdt)
{
	uint32_t crc;
	int ret;

	cr_assert_eq(fdt_pack(fdt), 0);
	if (fdt_setprop_inplace_u32(fdt, 0, "vm-fork,checksum", 0) == 0) {
		crc = (uint32_t)crc32(0, fdt, fdt_totalsize(fdt));
		cr_assert_eq(fdt_setprop_inplace_u32(fdt, 0, "vm-fork,checksum", crc), 0);
	}
	ret = parse_blob(fdt, fdt_totalsize(fdt));
	free(fdt);
	return ret;
}

#define BE32(v) (uint8_t)((v) >> 24), (uint8_t)((v) >> 16), (uint8_t)((v) >> 8), (uint8_t)(v)
#define BE64(v) BE32((uint64_t)(v) >> 32), BE32((uint64_t)(v) & 0xffffffff)
#define CELLS(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
#define ZEROS(n) NULL, (n)
#define DELETE NULL, -1

/* One change: the property set to val (len zero bytes if val is NULL), or deleted. */
struct edit {
	const char *what, *path, *prop;
	const uint8_t *val;
	int len;
};

static const struct edit edits[] = {
	{ "format 0", "/", "vm-fork,format", CELLS(BE32(0)) },
	{ "format as a u64", "/", "vm-fork,format", CELLS(BE64(1)) },
	{ "no checksum", "/", "vm-fork,checksum", DELETE },
	{ "ncpus 0", "/meta", "ncpus", CELLS(BE32(0)) },
	{ "ncpus past the limit", "/meta", "ncpus", CELLS(BE32(VM_MAX_CPUS + 1)) },
	{ "ncpus as a u64", "/meta", "ncpus", CELLS(BE64(2)) },
	{ "mem-size below the least", "/meta", "mem-size", CELLS(BE64(VM_MIN_MEM - 2 * MiB)) },
	{ "mem-size past the most", "/meta", "mem-size", CELLS(BE64(VM_MAX_MEM + 2 * MiB)) },
	{ "mem-size not in 2M steps", "/meta", "mem-size", CELLS(BE64(64 * MiB + 4096)) },
	{ "diff 2", "/meta", "diff", CELLS(BE32(2)) },
	{ "id as a u32", "/meta", "id", CELLS(BE32(1)) },
	{ "created missing", "/meta", "created", DELETE },
	{ "source unterminated", "/meta", "source", CELLS('a', 'b', 'c') },
	{ "source empty", "/meta", "source", ZEROS(0) },
	{ "source past 64 bytes", "/meta", "source", ZEROS(65) },
	{ "no CPUID entries", "/cpuid", "entries", ZEROS(0) },
	{ "CPUID past the limit", "/cpuid", "entries",
	  ZEROS((STATEFILE_MAX_CPUID + 1) * sizeof(struct kvm_cpuid_entry2)) },
	{ "CPUID not whole entries", "/cpuid", "entries", ZEROS(41) },
	{ "pit short", "/vm", "pit", ZEROS(sizeof(struct kvm_pit_state2) - 4) },
	{ "ioapic missing", "/vm", "ioapic", DELETE },
	{ "regs short", "/cpus/cpu@0", "regs", ZEROS(sizeof(struct kvm_regs) - 8) },
	{ "sregs long", "/cpus/cpu@1", "sregs", ZEROS(sizeof(struct kvm_sregs) + 8) },
	{ "lapic missing", "/cpus/cpu@1", "lapic", DELETE },
	{ "mp-state as a u64", "/cpus/cpu@0", "mp-state", CELLS(BE64(0)) },
	{ "tsc-khz as a u64", "/cpus/cpu@0", "tsc-khz", CELLS(BE64(1000000)) },
	{ "MSRs past the limit", "/cpus/cpu@1", "msrs",
	  ZEROS((STATE_MAX_MSRS + 1) * sizeof(struct kvm_msr_entry)) },
	{ "MSRs not whole entries", "/cpus/cpu@0", "msrs", ZEROS(17) },
	{ "MSRs missing", "/cpus/cpu@0", "msrs", DELETE },
	{ "XSAVE below the least", "/cpus/cpu@0", "xsave", ZEROS(STATE_XSAVE_MIN - 4) },
	{ "XSAVE past the most", "/cpus/cpu@1", "xsave", ZEROS(STATE_XSAVE_MAX + 4) },
	{ "XSAVE not whole words", "/cpus/cpu@0", "xsave", ZEROS(STATE_XSAVE_MIN + 2) },
	{ "ctl clone-id missing", "/devices/ctl", "clone-id", DELETE },
	{ "ctl generation as a u32", "/devices/ctl", "generation", CELLS(BE32(2)) },
	{ "i8042 state short", "/devices/i8042@60", "state", ZEROS(3) },
	{ "UART state long", "/devices/uart@3f8", "state", ZEROS(sizeof(struct uart_state) + 4) },
	{ "meta node missing", "/meta", NULL, DELETE },
	{ "cpuid node missing", "/cpuid", NULL, DELETE },
	{ "vm node missing", "/vm", NULL, DELETE },
	{ "cpus node missing", "/cpus", NULL, DELETE },
	{ "a vCPU missing", "/cpus/cpu@0", NULL, DELETE },
	{ "ctl node missing", "/devices/ctl", NULL, DELETE },
	{ "UART node missing", "/devices/uart@3f8", NULL, DELETE },
};

static void apply(void *fdt, const struct edit *e)
{
	int node = fdt_path_offset(fdt, e->path), ret;
	void *zeros;

	cr_assert_geq(node, 0, "%s: %s exists", e->what, e->path);
	if (!e->prop)
		ret = fdt_del_node(fdt, node);
	else if (e->len < 0)
		ret = fdt_delprop(fdt, node, e->prop);
	else if (e->val)
		ret = fdt_setprop(fdt, node, e->prop, e->val, e->len);
	else {
		zeros = calloc(1, (size_t)e->len + 1);
		ret = fdt_setprop(fdt, node, e->prop, zeros, e->len);
		free(zeros);
	}
	cr_assert_eq(ret, 0, "%s: the edit itself: %s", e->what, fdt_strerror(ret));
}

Test(snapfile, each_check_on_its_own)
{
	cr_assert_eq(seal_and_parse(open_tree()), 0, "unedited, the same path accepts it");
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		void *fdt = open_tree();

		apply(fdt, &edits[i]);
		cr_expect_eq(seal_and_parse(fdt), -EBADMSG, "%s", edits[i].what);
	}
}

/* Rewrite one field of a binary struct property in place. */
static void poke(void *fdt, const char *path, const char *name, size_t off, const void *v, size_t n)
{
	int node = fdt_path_offset(fdt, path), len;
	uint8_t *p = fdt_getprop_w(fdt, node, name, &len);

	cr_assert(p && off + n <= (size_t)len, "%s %s", path, name);
	memcpy(p + off, v, n);
}

Test(snapfile, device_and_node_order_checks)
{
	uint32_t sixteen = 16, seventeen = 17, zero = 0;
	void *fdt;

	fdt = open_tree();
	poke(fdt, "/devices/uart@3f8", "state", offsetof(struct uart_state, rx_head), &sixteen, 4);
	cr_expect_eq(seal_and_parse(fdt), -EBADMSG, "UART FIFO head past its end");
	fdt = open_tree();
	poke(fdt, "/devices/uart@3f8", "state", offsetof(struct uart_state, rx_count), &seventeen, 4);
	cr_expect_eq(seal_and_parse(fdt), -EBADMSG, "UART FIFO count past its size");
	fdt = open_tree();
	poke(fdt, "/vm", "ioapic", offsetof(struct kvm_irqchip, chip_id), &zero, 4);
	cr_expect_eq(seal_and_parse(fdt), -EBADMSG, "IOAPIC with the master PIC's id");
	fdt = open_tree();
	cr_assert_eq(fdt_set_name(fdt, fdt_path_offset(fdt, "/cpus/cpu@1"), "cpu@5"), 0);
	cr_expect_eq(seal_and_parse(fdt), -EBADMSG, "a gap in the vCPU numbers");
	fdt = open_tree();
	cr_assert_geq(fdt_add_subnode(fdt, fdt_path_offset(fdt, "/cpus"), "cpu@2"), 0);
	cr_expect_eq(seal_and_parse(fdt), -EBADMSG, "more vCPU nodes than ncpus");
}

Test(snapfile, trailing_bytes_refused)
{
	uint8_t *blob, *longer;
	size_t len;

	make_input(1, 1, STATE_XSAVE_MIN, 1);
	blob = build_blob(&len);
	longer = calloc(1, len + 8);
	memcpy(longer, blob, len);
	cr_assert_eq(parse_blob(longer, len), 0);
	/* With a checksum over all len + 8 bytes: only the tree's own size refuses it. */
	cr_assert_eq(fdt_setprop_inplace_u32(longer, 0, "vm-fork,checksum", 0), 0);
	cr_assert_eq(fdt_setprop_inplace_u32(longer, 0, "vm-fork,checksum",
					     (uint32_t)crc32(0, longer, (uInt)len + 8)), 0);
	cr_assert_eq(parse_blob(longer, len + 8), -EBADMSG, "8 bytes past the tree");
	free(longer);
	free(blob);
}

/* What the parser accepted must be in range, whatever the bytes were. */
static void expect_in_range(void)
{
	cr_assert(out.ncpus >= 1 && out.ncpus <= VM_MAX_CPUS);
	cr_assert(out.mem_size >= VM_MIN_MEM && out.mem_size <= VM_MAX_MEM);
	cr_assert_eq(out.mem_size % (2 * MiB), 0);
	cr_assert(cpuid_out && cpuid_out->nent >= 1 && cpuid_out->nent <= STATEFILE_MAX_CPUID);
	for (unsigned i = 0; i < out.ncpus; i++) {
		cr_assert_leq(out.vcpus[i].nmsrs, STATE_MAX_MSRS);
		cr_assert(out.vcpus[i].xsave_size >= STATE_XSAVE_MIN &&
			  out.vcpus[i].xsave_size <= STATE_XSAVE_MAX);
	}
	for (unsigned i = 0; i < STATE_NR_IRQCHIPS; i++)
		cr_assert_eq(out.vm.irqchip[i].chip_id, i);
	cr_assert(harness_uart_state(&out)->rx_head < 16 && harness_uart_state(&out)->rx_count <= 16);
	cr_assert(memchr(meta_out.source, 0, sizeof(meta_out.source)));
}

/* Every byte changed and the checksum made right again: only the structure checks stand. */
Test(snapfile, resealed_mutations_refused_or_in_range)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	unsigned accepted = 0, refused = 0;
	uint8_t *blob, *copy;
	size_t len;

	make_input(1, 2, STATE_XSAVE_MIN, 1);
	blob = build_blob(&len);
	copy = malloc(len);
	for (size_t f = 0; f < sizeof(flips); f++)
		for (size_t i = 0; i < len; i++) {
			memcpy(copy, blob, len);
			copy[i] ^= flips[f];
			if (fdt_check_full(copy, len) == 0 &&
			    fdt_setprop_inplace_u32(copy, 0, "vm-fork,checksum", 0) == 0)
				fdt_setprop_inplace_u32(copy, 0, "vm-fork,checksum",
							(uint32_t)crc32(0, copy, (uInt)len));
			if (parse_blob(copy, len) == 0) {
				expect_in_range();
				accepted++;
			} else {
				refused++;
			}
		}
	/* Payload bytes may change freely; structure and ranges may not. */
	cr_assert_gt(accepted, len / 2, "%u accepted", accepted);
	cr_assert_gt(refused, 100, "%u refused", refused);
	free(copy);
	free(blob);
}

/* All of a command's output, NUL-terminated (malloc'd), and its exit status. */
static char *command_output(const char *cmd, int *status)
{
	size_t size = 1 << 16, used = 0, n;
	char *buf = malloc(size);
	FILE *f = popen(cmd, "r");

	cr_assert(buf && f);
	while ((n = fread(buf + used, 1, size - used - 1, f)) > 0) {
		used += n;
		if (size - used < 2) {
			buf = realloc(buf, size *= 2);
			cr_assert(buf);
		}
	}
	buf[used] = 0;
	*status = pclose(f);
	return buf;
}

Test(snapfile, dtc_shows_cells_as_numbers)
{
	char path[] = "/tmp/vm-fork-snapfile-XXXXXX", cmd[128], *dts;
	int fd, status;
	size_t len;
	void *blob;

	if (access("/usr/bin/dtc", X_OK))
		cr_skip_test("skipped: no dtc (apt-get install device-tree-compiler)");
	make_input(2, 1, STATE_XSAVE_MIN, 1);
	blob = build_blob(&len);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, blob, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "dtc -q -I dtb -O dts %s", path);
	dts = command_output(cmd, &status);
	unlink(path);
	cr_assert_eq(status, 0, "dtc decompiles it");
	cr_assert(strstr(dts, "vm-fork,format = <0x01>;"));
	cr_assert(strstr(dts, "ncpus = <0x02>;"));
	cr_assert(strstr(dts, "mem-size = <0x00 0x10000000>;"));
	cr_assert(strstr(dts, "cpu@1 {"));
	cr_assert(strstr(dts, "uart@3f8 {"));
	free(dts);
	free(blob);
}
