/*
 * Loading a guest and building what the Linux x86-64 64-bit boot protocol
 * needs (Documentation/arch/x86/boot.rst): kernel images (ELF64 and bzImage),
 * initrd, boot_params with the e820 map and command line, identity page
 * tables, a boot GDT, the MP table, and the registers of the boot vCPU.
 * Everything here works on a guest_mem through gpa_ptr() and is testable
 * without KVM. Bad images get -ENOEXEC (or -EINVAL, -E2BIG, -ENOMEM) and a
 * message saying what is wrong; nothing is trusted.
 */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"

enum boot_image_kind { BOOT_IMAGE_ELF, BOOT_IMAGE_BZIMAGE };

struct boot_image {
	enum boot_image_kind kind;
	uint64_t entry;               /* guest-physical 64-bit entry point */
	uint64_t load_start, load_end; /* guest-physical range the kernel occupies */
	/* bzImage only: its setup header (boot_params offset 0x1f1 onwards) */
	uint8_t setup_header[0x290 - 0x1f1];
	size_t setup_header_len;      /* 0 for ELF */
	uint64_t initrd_addr_max;     /* highest address an initrd may end at (+1) */
};

#define BOOT_E820_MAX 16
#define E820_RAM      1
#define E820_RESERVED 2

struct boot_e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

/* Read a whole file into a malloc'd buffer (at most max_size bytes); returns 0 or -errno. */
int boot_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size);
/* The largest kernel and initrd files a VM boots (boot_read_file()'s max_size). */
#define BOOT_KERNEL_MAX (512 * MiB)
#define BOOT_INITRD_MAX (2 * GiB)

/*
 * Load an ELF64 x86-64 executable or a bzImage into guest RAM. A bzImage's
 * payload is decompressed on the host (gzip, xz, zstd, lzma) and its vmlinux
 * loaded like any ELF, so the slow in-guest decompressor never runs.
 * Segments must lie in RAM at or above LAYOUT_KERNEL_MIN.
 */
int boot_load_kernel(const struct guest_mem *mem, const uint8_t *image, size_t size,
		     struct boot_image *out);
/* The two halves of boot_load_kernel, for callers that know the image's kind. */
int boot_load_elf(const struct guest_mem *mem, const uint8_t *image, size_t size,
		  struct boot_image *out);
int boot_load_bzimage(const struct guest_mem *mem, const uint8_t *image, size_t size,
		      struct boot_image *out);

/*
 * Place an initrd as high as allowed below 4 GiB, page aligned, not over the
 * kernel. Returns 0 and its address in *addr, or -errno.
 */
int boot_load_initrd(const struct guest_mem *mem, const struct boot_image *kernel,
		     const uint8_t *data, size_t size, uint64_t *addr);

/* The e820 map for this RAM layout; returns the number of entries. */
int boot_build_e820(const struct guest_mem *mem, struct boot_e820_entry *out, int max);

/*
 * Write the zero page (boot_params at LAYOUT_ZERO_PAGE) with the e820 map,
 * the command line (at LAYOUT_CMDLINE), the initrd (size 0: none) and, for a
 * bzImage, its setup header. Returns 0 or -errno (-E2BIG: command line too long).
 */
int boot_write_params(const struct guest_mem *mem, const struct boot_image *kernel,
		      const char *cmdline, uint64_t initrd_addr, uint64_t initrd_size);

/*
 * Tell Linux where the ACPI RSDP is (the zero page's acpi_rsdp_addr, boot
 * protocol 2.14), so it need not scan for it. After boot_write_params().
 */
int boot_set_acpi_rsdp(const struct guest_mem *mem, uint64_t rsdp);

/* Identity page tables for the first 4 GiB (2 MiB pages, user-accessible) and the boot GDT. */
int boot_write_tables(const struct guest_mem *mem);

/* An Intel MP table (spec 1.4) describing ncpus processors, the IOAPIC and ISA IRQs. */
int boot_write_mptable(const struct guest_mem *mem, unsigned ncpus);

/*
 * Registers for the boot vCPU: 64-bit mode, paging on, RSI = boot_params,
 * RIP = entry. boot_vcpu_regs fills all of *regs. boot_vcpu_sregs changes
 * only the segments, descriptor tables, control registers and EFER, so pass
 * it what KVM_GET_SREGS returned: apic_base and the interrupt bitmap are kept.
 */
void boot_vcpu_regs(const struct boot_image *kernel, struct kvm_regs *regs);
void boot_vcpu_sregs(struct kvm_sregs *sregs);

#endif
