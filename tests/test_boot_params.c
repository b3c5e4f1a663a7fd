/* The zero page, e820 map, command line, initrd placement and boot_read_file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define boot_e820_entry linux_boot_e820_entry
#include <asm/bootparam.h>
#undef boot_e820_entry

#include "core/layout.h"
#include "vmm/boot.h"

static struct guest_mem bp_mem;

static void bp_setup(void)
{
	cr_assert_eq(guest_mem_create(&bp_mem, 64 * MiB, NULL), 0);
}

static void bp_teardown(void)
{
	guest_mem_destroy(&bp_mem);
}

static void bp_check_entry(const struct boot_e820_entry *e, uint64_t addr, uint64_t end,
			   uint32_t type)
{
	cr_assert_eq(e->addr, addr, "entry at %#llx, want %#llx", (unsigned long long)e->addr,
		     (unsigned long long)addr);
	cr_assert_eq(e->size, end - addr, "entry at %#llx has size %#llx",
		     (unsigned long long)addr, (unsigned long long)e->size);
	cr_assert_eq(e->type, type);
}

static void bp_check_low(const struct boot_e820_entry *map, uint64_t low_end)
{
	bp_check_entry(&map[0], 0, LAYOUT_EBDA, E820_RAM);
	bp_check_entry(&map[1], LAYOUT_EBDA, LAYOUT_HIMEM, E820_RESERVED);
	bp_check_entry(&map[2], LAYOUT_HIMEM, low_end, E820_RAM);
}

static int bp_e820_for(uint64_t size, struct boot_e820_entry *map)
{
	struct guest_mem m;
	int n;

	cr_assert_eq(guest_mem_create(&m, size, NULL), 0);
	n = boot_build_e820(&m, map, BOOT_E820_MAX);
	guest_mem_destroy(&m);
	return n;
}

static struct boot_image bp_elf_kernel(void)
{
	return (struct boot_image){
		.kind = BOOT_IMAGE_ELF, .entry = 0x1000000, .load_start = 0x1000000,
		.load_end = 0x2000000, .initrd_addr_max = LAYOUT_MMIO_HOLE_END,
	};
}

/* A bzImage kernel as the loader would describe it, with the given cmdline_size. */
static struct boot_image bp_bz_kernel(uint32_t cmdline_size)
{
	struct boot_image k = bp_elf_kernel();
	struct setup_header h = {
		.setup_sects = 27, .boot_flag = 0xaa55, .header = 0x53726448, .version = 0x020f,
		.type_of_loader = 0, .loadflags = LOADED_HIGH | KASLR_FLAG,
		.initrd_addr_max = 0x7fffffff, .kernel_alignment = 0x200000,
		.xloadflags = XLF_KERNEL_64, .cmdline_size = cmdline_size,
		.setup_data = 0xdead0000, .pref_address = 0x1000000, .init_size = 0x1234000,
	};

	k.kind = BOOT_IMAGE_BZIMAGE;
	memcpy(k.setup_header, &h, sizeof(h));
	k.setup_header_len = sizeof(h);
	return k;
}

static const struct boot_params *bp_zero_page(void)
{
	return gpa_ptr(&bp_mem, LAYOUT_ZERO_PAGE, sizeof(struct boot_params));
}

TestSuite(boot_params, .init = bp_setup, .fini = bp_teardown);

Test(boot_params, e820_64m)
{
	struct boot_e820_entry map[BOOT_E820_MAX];

	cr_assert_eq(bp_e820_for(64 * MiB, map), 3);
	bp_check_low(map, 64 * MiB);
}

Test(boot_params, e820_exactly_the_hole)
{
	struct boot_e820_entry map[BOOT_E820_MAX];

	cr_assert_eq(bp_e820_for(3 * GiB, map), 3);
	bp_check_low(map, LAYOUT_MMIO_HOLE);
}

Test(boot_params, e820_high_region)
{
	struct boot_e820_entry map[BOOT_E820_MAX];

	cr_assert_eq(bp_e820_for(5 * GiB, map), 4);
	bp_check_low(map, LAYOUT_MMIO_HOLE);
	bp_check_entry(&map[3], LAYOUT_HIGH_RAM, LAYOUT_HIGH_RAM + 2 * GiB, E820_RAM);
}

Test(boot_params, e820_too_small_array)
{
	struct boot_e820_entry map[2];

	cr_assert_eq(boot_build_e820(&bp_mem, map, 2), -E2BIG);
}

Test(boot_params, elf_zero_page)
{
	struct boot_image k = bp_elf_kernel();
	const struct boot_params *bp = bp_zero_page();
	struct boot_e820_entry map[BOOT_E820_MAX];
	const char *cmd = "console=ttyS0 earlyprintk=serial";

	memset((void *)bp, 0xcc, sizeof(*bp));  /* every byte not set must come back zero */
	cr_assert_eq(boot_write_params(&bp_mem, &k, cmd, 0, 0), 0);
	cr_assert_str_eq((const char *)gpa_ptr(&bp_mem, LAYOUT_CMDLINE, strlen(cmd) + 1), cmd);
	cr_assert_eq(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	cr_assert_eq(bp->ext_cmd_line_ptr, 0);
	cr_assert_eq(bp->hdr.type_of_loader, 0xff);
	cr_assert_eq(bp->hdr.loadflags, LOADED_HIGH);
	cr_assert_eq(bp->hdr.boot_flag, 0xaa55);
	cr_assert_eq(bp->hdr.header, 0x53726448);
	cr_assert_eq(bp->hdr.ramdisk_image, 0);
	cr_assert_eq(bp->hdr.ramdisk_size, 0);
	cr_assert_eq(bp->sentinel, 0);
	cr_assert_eq(bp->screen_info.orig_video_isVGA, 0);
	cr_assert_eq(bp->e820_entries, 3);
	cr_assert_eq(boot_build_e820(&bp_mem, map, BOOT_E820_MAX), 3);
	cr_assert(!memcmp(bp->e820_table, map, 3 * sizeof(map[0])));
	cr_assert_eq(bp->e820_table[3].size, 0);
}

Test(boot_params, null_cmdline_is_empty)
{
	struct boot_image k = bp_elf_kernel();

	memset(gpa_ptr(&bp_mem, LAYOUT_CMDLINE, 4), 'x', 4);
	cr_assert_eq(boot_write_params(&bp_mem, &k, NULL, 0, 0), 0);
	cr_assert_eq(*(char *)gpa_ptr(&bp_mem, LAYOUT_CMDLINE, 1), 0);
}

Test(boot_params, cmdline_too_long)
{
	struct boot_image k = bp_elf_kernel();
	char *cmd = malloc(LAYOUT_CMDLINE_MAX + 1);

	memset(cmd, 'a', LAYOUT_CMDLINE_MAX);
	cmd[LAYOUT_CMDLINE_MAX] = 0;
	cr_assert_eq(boot_write_params(&bp_mem, &k, cmd, 0, 0), -E2BIG);
	cmd[LAYOUT_CMDLINE_MAX - 1] = 0;             /* exactly fills the area with its NUL */
	cr_assert_eq(boot_write_params(&bp_mem, &k, cmd, 0, 0), 0);
	cr_assert_eq(*(char *)gpa_ptr(&bp_mem, LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX - 1, 1), 0);
	free(cmd);
}

Test(boot_params, bzimage_cmdline_size_limit)
{
	struct boot_image k = bp_bz_kernel(10);

	cr_assert_eq(boot_write_params(&bp_mem, &k, "0123456789a", 0, 0), -E2BIG);
	cr_assert_eq(boot_write_params(&bp_mem, &k, "0123456789", 0, 0), 0);
}

Test(boot_params, bzimage_setup_header_copied)
{
	struct boot_image k = bp_bz_kernel(0x7ff);
	const struct boot_params *bp = bp_zero_page();

	cr_assert_eq(boot_write_params(&bp_mem, &k, "quiet", 0x3000000, 0x12345), 0);
	cr_assert_eq(bp->hdr.setup_sects, 27);
	cr_assert_eq(bp->hdr.version, 0x020f);
	cr_assert_eq(bp->hdr.header, 0x53726448);
	cr_assert_eq(bp->hdr.cmdline_size, 0x7ff);
	cr_assert_eq(bp->hdr.init_size, 0x1234000);
	cr_assert_eq(bp->hdr.kernel_alignment, 0x200000);
	cr_assert_eq(bp->hdr.type_of_loader, 0xff);
	cr_assert_eq(bp->hdr.loadflags, LOADED_HIGH, "KASLR_FLAG is the kernel's to set");
	cr_assert_eq(bp->hdr.setup_data, 0, "setup_data from the image passed on");
	cr_assert_eq(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	cr_assert_eq(bp->hdr.ramdisk_image, 0x3000000);
	cr_assert_eq(bp->hdr.ramdisk_size, 0x12345);
	cr_assert_eq(bp->ext_ramdisk_image, 0);
	cr_assert_eq(bp->ext_ramdisk_size, 0);
}

/* Header bytes past this build's struct setup_header still reach the zero page; stale fields do not. */
Test(boot_params, bzimage_header_tail_and_stale_fields)
{
	struct boot_image k = bp_bz_kernel(0x7ff);
	const struct boot_params *bp = bp_zero_page();
	struct setup_header h;

	memcpy(&h, k.setup_header, sizeof(h));
	h.ramdisk_image = 0xbad000;
	h.ramdisk_size = 0x1000;
	h.cmd_line_ptr = 0x12345;
	memcpy(k.setup_header, &h, sizeof(h));
	k.setup_header_len = sizeof(k.setup_header);
	k.setup_header[sizeof(k.setup_header) - 1] = 0x5e;
	cr_assert_eq(boot_write_params(&bp_mem, &k, "", 0, 0), 0);
	cr_assert_eq(((const uint8_t *)bp)[0x28f], 0x5e);
	cr_assert_eq(((const uint8_t *)bp)[0x290], 0);
	cr_assert_eq(bp->hdr.ramdisk_image, 0);
	cr_assert_eq(bp->hdr.ramdisk_size, 0);
	cr_assert_eq(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
}

Test(boot_params, bad_inputs_rejected)
{
	struct boot_image k = bp_elf_kernel();

	cr_assert_eq(boot_write_params(&bp_mem, &k, "", 63 * MiB, 2 * MiB), -EINVAL);
	cr_assert_eq(boot_write_params(&bp_mem, &k, "", UINT64_MAX - 10, 100), -EINVAL);
	k.setup_header_len = sizeof(k.setup_header) + 1;
	cr_assert_eq(boot_write_params(&bp_mem, &k, "", 0, 0), -EINVAL);
}

Test(boot_params, initrd_above_4g_uses_ext_fields)
{
	struct guest_mem big;
	struct boot_image k = bp_elf_kernel();
	const struct boot_params *bp;

	cr_assert_eq(guest_mem_create(&big, 5 * GiB, NULL), 0);
	cr_assert_eq(boot_write_params(&big, &k, "", LAYOUT_HIGH_RAM + 0x5000, 0x1000), 0);
	bp = gpa_ptr(&big, LAYOUT_ZERO_PAGE, sizeof(*bp));
	cr_assert_eq(bp->hdr.ramdisk_image, 0x5000);
	cr_assert_eq(bp->ext_ramdisk_image, 1);
	cr_assert_eq(bp->hdr.ramdisk_size, 0x1000);
	cr_assert_eq(bp->e820_entries, 4);
	guest_mem_destroy(&big);
}

Test(boot_params, initrd_placed_high_and_aligned)
{
	struct boot_image k = bp_elf_kernel();
	size_t size = 0x123456;
	uint8_t *data = malloc(size);
	uint64_t at;

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	cr_assert_eq(boot_load_initrd(&bp_mem, &k, data, size, &at), 0);
	cr_assert_eq(at, (64 * MiB - size) & ~(PAGE_SIZE - 1));
	cr_assert(!memcmp(gpa_ptr(&bp_mem, at, size), data, size));
	k.initrd_addr_max = 0x3000000;               /* the kernel's limit wins */
	cr_assert_eq(boot_load_initrd(&bp_mem, &k, data, size, &at), 0);
	cr_assert_eq(at, (0x3000000 - size) & ~(PAGE_SIZE - 1));
	free(data);
}

Test(boot_params, initrd_that_does_not_fit)
{
	struct boot_image k = bp_elf_kernel();
	static const uint8_t byte = 1;
	uint64_t at = 0;

	cr_assert_eq(boot_load_initrd(&bp_mem, &k, gpa_ptr(&bp_mem, 0, 32 * MiB), 32 * MiB + 1,
				      &at), -ENOMEM);
	cr_assert_eq(boot_load_initrd(&bp_mem, &k, &byte, 0, &at), -EINVAL);
	k.initrd_addr_max = 0x2000000;               /* limit at the kernel's end */
	cr_assert_eq(boot_load_initrd(&bp_mem, &k, &byte, 1, &at), -ENOMEM);
	k = bp_elf_kernel();
	k.load_end = UINT64_MAX - 5;                 /* page-aligning it would wrap */
	cr_assert_eq(boot_load_initrd(&bp_mem, &k, &byte, 1, &at), -ENOMEM);
	cr_assert_eq(at, 0);
	/* Exactly the room between the kernel and the end of RAM fits. */
	k = bp_elf_kernel();
	cr_assert_eq(boot_load_initrd(&bp_mem, &k, gpa_ptr(&bp_mem, 0, 32 * MiB), 32 * MiB, &at),
		     0);
	cr_assert_eq(at, 0x2000000);
}

Test(boot_params, initrd_of_the_host)
{
	struct boot_image k = bp_elf_kernel();
	struct guest_mem m;
	uint8_t *data;
	size_t size;
	uint64_t at;
	glob_t g;

	if (glob("/boot/initrd.img*", 0, NULL, &g) != 0) {
		cr_skip("no /boot/initrd.img* on this host to place");
		return;
	}
	cr_assert_eq(boot_read_file(g.gl_pathv[0], 1 * GiB, &data, &size), 0, "%s",
		     g.gl_pathv[0]);
	globfree(&g);
	cr_assert_eq(guest_mem_create(&m, 256 * MiB, NULL), 0);
	cr_assert_eq(boot_load_initrd(&m, &k, data, size, &at), 0);
	cr_assert_geq(at, k.load_end);
	cr_assert_leq(at + size, 256 * MiB);
	cr_assert_eq(at % PAGE_SIZE, 0);
	cr_assert(!memcmp(gpa_ptr(&m, at, size), data, size));
	guest_mem_destroy(&m);
	free(data);
}

Test(boot_params, read_file)
{
	char path[] = "/tmp/vmfork-boot-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *data;
	size_t size;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello, guest", 12), 12);
	close(fd);
	cr_assert_eq(boot_read_file(path, 100, &data, &size), 0);
	cr_assert_eq(size, 12);
	cr_assert(!memcmp(data, "hello, guest", 12));
	free(data);
	cr_assert_eq(boot_read_file(path, 11, &data, &size), -EFBIG);
	unlink(path);
	cr_assert_eq(boot_read_file(path, 100, &data, &size), -ENOENT);
	cr_assert_eq(boot_read_file("/tmp", 100, &data, &size), -EINVAL);
}
