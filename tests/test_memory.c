/* Guest RAM: the x86 layout around the MMIO hole and the one checked gpa_ptr(). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/layout.h"
#include "core/memory.h"
#include "tests/harness.h"

Test(memory, layout_small_fits_below_hole)
{
	struct mem_region r[GUEST_MEM_MAX_REGIONS];

	cr_assert_eq(guest_mem_layout(64 * MiB, r), 1);
	cr_assert_eq(r[0].gpa, 0);
	cr_assert_eq(r[0].size, 64 * MiB);
}

Test(memory, layout_large_splits_at_hole)
{
	struct mem_region r[GUEST_MEM_MAX_REGIONS];

	cr_assert_eq(guest_mem_layout(3 * GiB, r), 1, "exactly up to the hole: one region");
	cr_assert_eq(guest_mem_layout(16 * GiB, r), 2);
	cr_assert_eq(r[0].size, LAYOUT_MMIO_HOLE);
	cr_assert_eq(r[1].gpa, LAYOUT_HIGH_RAM);
	cr_assert_eq(r[1].size, 16 * GiB - LAYOUT_MMIO_HOLE);
	cr_assert_eq(r[1].file_off, LAYOUT_MMIO_HOLE);
	cr_assert_neq(r[0].slot, r[1].slot);
}

Test(memory, gpa_ptr_bounds)
{
	struct guest_mem m;
	uint8_t *base;

	cr_assert_eq(guest_mem_create(&m, 16 * MiB, NULL), 0);
	base = m.host;
	cr_assert_eq(gpa_ptr(&m, 0, 16), base);
	cr_assert_eq(gpa_ptr(&m, 16 * MiB - 8, 8), base + 16 * MiB - 8);
	cr_assert_null(gpa_ptr(&m, 16 * MiB - 8, 9), "runs past the end");
	cr_assert_null(gpa_ptr(&m, 16 * MiB, 1));
	cr_assert_null(gpa_ptr(&m, UINT64_MAX, 2), "wraps");
	cr_assert_null(gpa_ptr(&m, 8, UINT64_MAX), "length overflows");
	cr_assert_null(gpa_ptr(&m, LAYOUT_CTL_MMIO, 8), "MMIO is not RAM");
	cr_assert_eq(guest_write(&m, 100, "abc", 3), 0);
	cr_assert_eq(memcmp(base + 100, "abc", 3), 0);
	cr_assert_eq(guest_write(&m, 16 * MiB - 1, "ab", 2), -EFAULT);
	guest_mem_destroy(&m);
}

Test(memory, gpa_ptr_high_region)
{
	struct guest_mem m;

	/* Mapped with MAP_NORESERVE: 4 GiB of address space, no memory touched. */
	cr_assert_eq(guest_mem_create(&m, 4 * GiB, NULL), 0);
	cr_assert_eq(m.nregions, 2);
	cr_assert_null(gpa_ptr(&m, LAYOUT_MMIO_HOLE, 1), "the hole is not RAM");
	cr_assert_null(gpa_ptr(&m, LAYOUT_MMIO_HOLE - 4, 8), "no range straddles the hole");
	cr_assert_eq(gpa_ptr(&m, LAYOUT_HIGH_RAM, 8), m.host + LAYOUT_MMIO_HOLE);
	cr_assert_not_null(gpa_ptr(&m, LAYOUT_HIGH_RAM + GiB - 8, 8));
	cr_assert_null(gpa_ptr(&m, LAYOUT_HIGH_RAM + GiB, 1));
	cr_assert_eq(guest_mem_low_end(&m), LAYOUT_MMIO_HOLE);
	guest_mem_destroy(&m);
}

Test(memory, rejects_bad_sizes)
{
	struct guest_mem m;

	cr_assert_eq(guest_mem_create(&m, 8 * MiB, NULL), -EINVAL);
	cr_assert_eq(guest_mem_create(&m, 17 * MiB, NULL), -EINVAL);
	cr_assert_eq(guest_mem_create(&m, 2048 * GiB, NULL), -EINVAL);
	cr_assert_eq(m.fd, -1);
}

Test(memory, file_backing)
{
	char path[] = "/tmp/vm-fork-ram-XXXXXX";
	int fd = mkstemp(path);
	struct guest_mem m;
	struct stat st;

	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(guest_mem_create(&m, 32 * MiB, path), 0);
	cr_assert_eq(guest_write(&m, 4096, "vm-fork", 7), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 32 * MiB);
	guest_mem_destroy(&m);
	fd = open(path, O_RDONLY);
	char buf[8] = { 0 };
	cr_assert_eq(pread(fd, buf, 7, 4096), 7, "MAP_SHARED writes reach the file");
	cr_assert_str_eq(buf, "vm-fork");
	close(fd);
	unlink(path);
	cr_assert_eq(guest_mem_create(&m, 32 * MiB, "/nonexistent-dir/ram"), -ENOENT);
}

/*
 * The dirty log's runs: across bitmap words, a whole word, and across the
 * two regions, whose file offsets meet (3 GiB of RAM below the hole, 4 MiB
 * above 4 GiB). The VMM's writes (guest_write) are what is logged here.
 */
Test(memory, dirty_log_runs)
{
	static const uint64_t pages[] = { 0, 1, 2, 63, 64, 65 };
	const uint64_t low_end = 3 * GiB, size = 3 * GiB + 4 * MiB;
	struct mem_ranges r = { 0 };
	struct guest_mem m;
	uint8_t byte = 1;
	int kvm, vm;

	SKIP_WITHOUT_KVM();
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	cr_assert_geq(vm, 0);
	cr_assert_eq(guest_mem_create(&m, size, NULL), 0);
	cr_assert_eq(m.nregions, 2);
	cr_assert_eq(guest_mem_register(&m, vm), 0);
	cr_assert_eq(guest_mem_log_dirty(&m, vm), 0);
	for (unsigned i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		cr_assert_eq(guest_write(&m, pages[i] * PAGE_SIZE, &byte, 1), 0);
	for (uint64_t p = 128; p < 192; p++)
		cr_assert_eq(guest_write(&m, p * PAGE_SIZE, &byte, 1), 0);
	cr_assert_eq(guest_write(&m, low_end - 2, "ab", 2), 0);
	cr_assert_eq(guest_write(&m, LAYOUT_HIGH_RAM + 4096 - 1, "cd", 2), 0, "two pages at 4 GiB");
	cr_assert_eq(guest_mem_take_dirty(&m, vm, &r), 0);
	cr_assert_eq(r.n, 4, "%u runs", r.n);
	cr_assert_eq(r.r[0].off, 0);
	cr_assert_eq(r.r[0].len, 3 * PAGE_SIZE);
	cr_assert_eq(r.r[1].off, 63 * PAGE_SIZE);
	cr_assert_eq(r.r[1].len, 3 * PAGE_SIZE, "63..65 across the word boundary");
	cr_assert_eq(r.r[2].off, 128 * PAGE_SIZE);
	cr_assert_eq(r.r[2].len, 64 * PAGE_SIZE, "a whole word");
	cr_assert_eq(r.r[3].off, low_end - PAGE_SIZE);
	cr_assert_eq(r.r[3].len, 3 * PAGE_SIZE, "the last low page and the first two high ones");
	cr_assert_eq(r.pages, 3 + 3 + 64 + 3);
	cr_assert_eq(guest_mem_take_dirty(&m, vm, &r), 0);
	cr_assert_eq(r.n, 0, "a look clears the log");
	mem_ranges_free(&r);
	guest_mem_destroy(&m);
	close(vm);
	close(kvm);
}
