/* ELF64 kernel loading: good images land where they say, bad ones are refused untouched. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/layout.h"
#include "vmm/boot.h"

#define ELF_DATA_OFF 0x1000
#define ELF_MAX_SEGS 4

struct elf_seg {
	uint32_t type, flags;
	uint64_t paddr, vaddr, filesz, memsz;
	uint8_t fill;          /* the segment's file bytes are fill, fill+1, ... */
};

struct elf_img {
	uint8_t buf[ELF_DATA_OFF + 4 * 0x1000];
	size_t size;
};

static struct guest_mem elf_mem;

static void elf_setup(void)
{
	cr_assert_eq(guest_mem_create(&elf_mem, 64 * MiB, NULL), 0);
}

static void elf_teardown(void)
{
	guest_mem_destroy(&elf_mem);
}

/* A valid ET_EXEC image: segment i's file data lives at ELF_DATA_OFF + i * 0x1000. */
static void elf_make(struct elf_img *img, const struct elf_seg *segs, unsigned n, uint64_t entry)
{
	Elf64_Ehdr eh = {
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = entry, .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)n,
	};

	cr_assert(n <= ELF_MAX_SEGS);
	memset(img, 0, sizeof(*img));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(img->buf, &eh, sizeof(eh));
	for (unsigned i = 0; i < n; i++) {
		Elf64_Phdr ph = {
			.p_type = segs[i].type, .p_flags = segs[i].flags,
			.p_offset = ELF_DATA_OFF + i * 0x1000ULL, .p_vaddr = segs[i].vaddr,
			.p_paddr = segs[i].paddr, .p_filesz = segs[i].filesz,
			.p_memsz = segs[i].memsz, .p_align = 0x1000,
		};
		uint8_t *data = img->buf + ph.p_offset;

		cr_assert(segs[i].filesz <= 0x1000 || segs[i].type != PT_LOAD);
		for (uint64_t b = 0; b < segs[i].filesz && b < 0x1000; b++)
			data[b] = (uint8_t)(segs[i].fill + b);
		memcpy(img->buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
	img->size = ELF_DATA_OFF + n * 0x1000ULL;
}

/* The standard two-segment image: text at 2 MiB, data plus bss at 3 MiB. */
static const struct elf_seg elf_std[] = {
	{ PT_LOAD, PF_R | PF_X, 0x200000, 0x200000, 0x800, 0x800, 0x10 },
	{ PT_LOAD, PF_R | PF_W, 0x300000, 0x300000, 0x100, 0x3000, 0x80 },
};

static void elf_std_image(struct elf_img *img)
{
	elf_make(img, elf_std, 2, 0x200040);
}

static Elf64_Phdr *elf_ph(struct elf_img *img, unsigned i)
{
	return (Elf64_Phdr *)(img->buf + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

static Elf64_Ehdr *elf_eh(struct elf_img *img)
{
	return (Elf64_Ehdr *)img->buf;
}

/* A rejected image must leave guest RAM as it was: poison it and check afterwards. */
static void elf_expect_reject(struct elf_img *img, int err)
{
	struct boot_image bi = { .entry = 0x1234 };
	uint8_t *text = gpa_ptr(&elf_mem, 0x200000, 0x800);

	memset(text, 0x5a, 0x800);
	cr_assert_eq(boot_load_elf(&elf_mem, img->buf, img->size, &bi), err);
	cr_assert_eq(bi.entry, 0x1234, "output written on failure");
	for (int i = 0; i < 0x800; i++)
		cr_assert_eq(text[i], 0x5a, "guest RAM changed by a rejected image");
}

TestSuite(boot_elf, .init = elf_setup, .fini = elf_teardown);

Test(boot_elf, loads_segments_and_zeroes_bss)
{
	struct elf_img img;
	struct boot_image bi;
	uint8_t *bss = gpa_ptr(&elf_mem, 0x300000, 0x3000);
	const uint8_t *text = gpa_ptr(&elf_mem, 0x200000, 0x800);

	memset(bss, 0xaa, 0x3000);
	elf_std_image(&img);
	cr_assert_eq(boot_load_kernel(&elf_mem, img.buf, img.size, &bi), 0);
	cr_assert_eq(bi.kind, BOOT_IMAGE_ELF);
	cr_assert_eq(bi.entry, 0x200040);
	cr_assert_eq(bi.load_start, 0x200000);
	cr_assert_eq(bi.load_end, 0x303000);
	cr_assert_eq(bi.setup_header_len, 0);
	for (int i = 0; i < 0x800; i++)
		cr_assert_eq(text[i], (uint8_t)(0x10 + i));
	for (int i = 0; i < 0x100; i++)
		cr_assert_eq(bss[i], (uint8_t)(0x80 + i));
	for (int i = 0x100; i < 0x3000; i++)
		cr_assert_eq(bss[i], 0, "bss byte %#x not zeroed", i);
	cr_assert_eq(*(uint8_t *)gpa_ptr(&elf_mem, 0x303000, 1), 0);
}

Test(boot_elf, virtual_entry_is_translated)
{
	const struct elf_seg segs[] = {
		{ PT_LOAD, PF_R | PF_X, 0x1000000, 0xffffffff81000000ULL, 0x400, 0x400, 1 },
		{ PT_NOTE, PF_R, 0, 0, 0x10, 0x10, 2 },
	};
	struct elf_img img;
	struct boot_image bi;

	elf_make(&img, segs, 2, 0xffffffff81000010ULL);
	cr_assert_eq(boot_load_elf(&elf_mem, img.buf, img.size, &bi), 0);
	cr_assert_eq(bi.entry, 0x1000010);
	cr_assert_eq(bi.load_start, 0x1000000);
	cr_assert_eq(bi.load_end, 0x1000400);
}

Test(boot_elf, rejects_truncated_header)
{
	struct elf_img img;

	elf_std_image(&img);
	img.size = sizeof(Elf64_Ehdr) - 1;
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_bad_magic_class_machine_type)
{
	struct elf_img img;

	elf_std_image(&img);
	img.buf[1] = 'X';
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	img.buf[EI_CLASS] = ELFCLASS32;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_machine = EM_386;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_type = ET_DYN;
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_phdrs_past_end)
{
	struct elf_img img;

	elf_std_image(&img);
	elf_eh(&img)->e_phoff = img.size - sizeof(Elf64_Phdr) / 2;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_phoff = UINT64_MAX - 8;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_phnum = 0;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_phentsize = 32;
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_filesz_over_memsz)
{
	struct elf_img img;

	elf_std_image(&img);
	elf_ph(&img, 1)->p_memsz = 0x80;
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_segment_outside_ram)
{
	struct elf_img img;

	elf_std_image(&img);
	elf_ph(&img, 1)->p_paddr = 64 * MiB - 0x1000;   /* memsz 0x3000 runs past the end */
	elf_expect_reject(&img, -ENOMEM);
	elf_std_image(&img);
	elf_ph(&img, 1)->p_paddr = LAYOUT_IOAPIC;
	elf_expect_reject(&img, -ENOMEM);
	elf_std_image(&img);
	elf_ph(&img, 1)->p_paddr = UINT64_MAX - 0x1000;  /* paddr + memsz wraps */
	elf_expect_reject(&img, -ENOMEM);
}

Test(boot_elf, rejects_segment_over_vmm_tables)
{
	struct elf_img img;

	elf_std_image(&img);
	elf_ph(&img, 1)->p_paddr = LAYOUT_PML4;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_ph(&img, 1)->p_paddr = LAYOUT_KERNEL_MIN - 0x1000;  /* straddles 1 MiB */
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_offset_overflow_and_data_past_end)
{
	struct elf_img img;

	elf_std_image(&img);
	elf_ph(&img, 1)->p_offset = UINT64_MAX - 4;
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_ph(&img, 1)->p_offset = img.size - 0x10;   /* filesz 0x100 runs off the file */
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_bad_entry)
{
	struct elf_img img;

	elf_std_image(&img);
	elf_eh(&img)->e_entry = 0x400000;           /* in no segment */
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_entry = 0x300010;           /* in the data segment, not executable */
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_entry = 0x200800;           /* one past the text segment */
	elf_expect_reject(&img, -ENOEXEC);
	elf_std_image(&img);
	elf_eh(&img)->e_entry = 0xffffffff80200040ULL; /* virtual, but vaddr == paddr here */
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, rejects_no_pt_load)
{
	const struct elf_seg segs[] = { { PT_NOTE, PF_R | PF_X, 0x200000, 0x200000, 8, 8, 0 } };
	struct elf_img img;

	elf_make(&img, segs, 1, 0x200000);
	elf_expect_reject(&img, -ENOEXEC);
}

Test(boot_elf, kernel_rejects_unknown_format)
{
	static const uint8_t junk[4096] = { 'M', 'Z' };
	struct boot_image bi;

	cr_assert_eq(boot_load_kernel(&elf_mem, junk, sizeof(junk), &bi), -ENOEXEC);
	cr_assert_eq(boot_load_kernel(&elf_mem, junk, 3, &bi), -ENOEXEC);
	cr_assert_eq(boot_load_kernel(&elf_mem, junk, 0, &bi), -ENOEXEC);
}

/* Random corruption of the headers must never crash the loader (ASan checks the reads). */
Test(boot_elf, survives_random_header_corruption)
{
	struct elf_img img;
	struct boot_image bi;
	unsigned seed = 12345, accepted = 0;

	for (int round = 0; round < 3000; round++) {
		elf_std_image(&img);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			img.buf[(seed >> 8) % (sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr))] =
				(uint8_t)(seed >> 20);
		}
		if (boot_load_elf(&elf_mem, img.buf, img.size, &bi) == 0) {
			accepted++;
			cr_assert(bi.load_start >= LAYOUT_KERNEL_MIN && bi.load_end <= 64 * MiB);
			cr_assert(bi.entry >= bi.load_start && bi.entry < bi.load_end);
		}
	}
	cr_assert(accepted < 3000, "corruption never detected");
}
