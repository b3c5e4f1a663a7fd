/*
 * ELF64 kernel loading: a vmlinux, a bzImage's decompressed payload, or one
 * of our test guests. Every header field is checked before it is used, and
 * nothing is written to guest RAM until every segment has been validated,
 * so a bad image leaves RAM as it was.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "core/layout.h"
#include "core/log.h"
#include "vmm/boot.h"

/* Linux links vmlinux at -2 GiB; an entry up there is virtual, not physical. */
#define KERNEL_VIRT_BASE 0xffffffff80000000ULL

struct elf_image {
	const uint8_t *data;
	size_t size;
	Elf64_Ehdr ehdr;
};

static int elf_check_ehdr(const Elf64_Ehdr *eh, size_t size)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
		pr_err("kernel: not an ELF image (bad magic)");
		return -ENOEXEC;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		pr_err("kernel: ELF is not a 64-bit little-endian x86-64 image");
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC) {
		pr_err("kernel: ELF type %u is not ET_EXEC", eh->e_type);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum == PN_XNUM) {
		pr_err("kernel: ELF has no usable program headers");
		return -ENOEXEC;
	}
	/* e_phnum < 2^16 and e_phentsize is 56, so the product cannot overflow. */
	if (eh->e_phoff > size || size - eh->e_phoff < (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)) {
		pr_err("kernel: ELF program headers lie past the end of the file");
		return -ENOEXEC;
	}
	return 0;
}

/* Program headers are copied out because image may not be 8-byte aligned. */
static Elf64_Phdr elf_phdr(const struct elf_image *img, unsigned i)
{
	Elf64_Phdr ph;

	memcpy(&ph, img->data + img->ehdr.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

static int elf_check_segment(const struct guest_mem *mem, const struct elf_image *img,
			     const Elf64_Phdr *ph)
{
	if (ph->p_filesz > ph->p_memsz) {
		pr_err("kernel: ELF segment at %#llx has filesz > memsz",
		       (unsigned long long)ph->p_paddr);
		return -ENOEXEC;
	}
	if (ph->p_offset > img->size || img->size - ph->p_offset < ph->p_filesz) {
		pr_err("kernel: ELF segment at %#llx lies past the end of the file",
		       (unsigned long long)ph->p_paddr);
		return -ENOEXEC;
	}
	if (ph->p_paddr < LAYOUT_KERNEL_MIN) {
		pr_err("kernel: ELF segment at %#llx is below %#llx, over the VMM's boot structures",
		       (unsigned long long)ph->p_paddr, LAYOUT_KERNEL_MIN);
		return -ENOEXEC;
	}
	if (!gpa_ptr(mem, ph->p_paddr, ph->p_memsz)) {
		pr_err("kernel: ELF segment [%#llx, +%#llx) does not fit in guest RAM",
		       (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
		return -ENOMEM;
	}
	return 0;
}

static bool elf_is_load(const Elf64_Phdr *ph)
{
	return ph->p_type == PT_LOAD && ph->p_memsz != 0;
}

/* Validate every PT_LOAD and compute the physical range they cover. */
static int elf_check_segments(const struct guest_mem *mem, const struct elf_image *img,
			      struct boot_image *out)
{
	unsigned nload = 0;

	out->load_start = UINT64_MAX;
	out->load_end = 0;
	for (unsigned i = 0; i < img->ehdr.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(img, i);
		int ret;

		if (!elf_is_load(&ph))
			continue;
		ret = elf_check_segment(mem, img, &ph);
		if (ret < 0)
			return ret;
		nload++;
		if (ph.p_paddr < out->load_start)
			out->load_start = ph.p_paddr;
		/* gpa_ptr accepted [p_paddr, +p_memsz), so this sum does not overflow. */
		if (ph.p_paddr + ph.p_memsz > out->load_end)
			out->load_end = ph.p_paddr + ph.p_memsz;
	}
	if (nload == 0) {
		pr_err("kernel: ELF has no loadable segment");
		return -ENOEXEC;
	}
	return 0;
}

/* Does addr (virtual when virt) fall in this executable segment? Sets *phys if so. */
static bool elf_segment_holds(const Elf64_Phdr *ph, uint64_t addr, bool virt, uint64_t *phys)
{
	uint64_t base = virt ? ph->p_vaddr : ph->p_paddr;

	if (!elf_is_load(ph) || !(ph->p_flags & PF_X))
		return false;
	if (addr < base || addr - base >= ph->p_memsz)
		return false;
	*phys = ph->p_paddr + (addr - base);
	return true;
}

static int elf_find_entry(const struct elf_image *img, uint64_t *entry)
{
	uint64_t addr = img->ehdr.e_entry;
	bool virt = addr >= KERNEL_VIRT_BASE;

	for (unsigned i = 0; i < img->ehdr.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(img, i);

		if (elf_segment_holds(&ph, addr, virt, entry))
			return 0;
	}
	pr_err("kernel: ELF entry %#llx is not inside a loaded executable segment",
	       (unsigned long long)addr);
	return -ENOEXEC;
}

static void elf_copy_segments(const struct guest_mem *mem, const struct elf_image *img)
{
	for (unsigned i = 0; i < img->ehdr.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(img, i);
		uint8_t *dst;

		if (!elf_is_load(&ph))
			continue;
		dst = gpa_ptr(mem, ph.p_paddr, ph.p_memsz);
		memcpy(dst, img->data + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
}

int boot_load_elf(const struct guest_mem *mem, const uint8_t *image, size_t size,
		  struct boot_image *out)
{
	struct elf_image img = { .data = image, .size = size };
	struct boot_image bi = { .kind = BOOT_IMAGE_ELF, .initrd_addr_max = LAYOUT_MMIO_HOLE_END };
	int ret;

	if (size < sizeof(img.ehdr)) {
		pr_err("kernel: image of %zu bytes is too short for an ELF header", size);
		return -ENOEXEC;
	}
	memcpy(&img.ehdr, image, sizeof(img.ehdr));
	ret = elf_check_ehdr(&img.ehdr, size);
	if (ret < 0)
		return ret;
	ret = elf_check_segments(mem, &img, &bi);
	if (ret < 0)
		return ret;
	ret = elf_find_entry(&img, &bi.entry);
	if (ret < 0)
		return ret;
	elf_copy_segments(mem, &img);
	*out = bi;
	return 0;
}

int boot_load_kernel(const struct guest_mem *mem, const uint8_t *image, size_t size,
		     struct boot_image *out)
{
	if (size >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0)
		return boot_load_elf(mem, image, size, out);
	return boot_load_bzimage(mem, image, size, out);
}
