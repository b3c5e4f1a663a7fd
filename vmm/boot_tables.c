/*
 * What a vCPU needs to start in 64-bit mode at a kernel's entry: identity
 * page tables for the first 4 GiB, a GDT with flat 64-bit segments and a
 * TSS, and the matching register state. This is the state boot.rst's
 * "64-bit Boot Protocol" asks for, and what a test guest starts in.
 */
#include <errno.h>
#include <string.h>

#include "core/layout.h"
#include "vmm/boot.h"

#define PTE_P   (1ULL << 0)
#define PTE_RW  (1ULL << 1)
#define PTE_US  (1ULL << 2)   /* test guests run their work at CPL3 on these tables */
#define PTE_PS  (1ULL << 7)
#define PT_ENTRIES 512
#define IDENT_GIB  4          /* one page directory per GiB */

#define GDT_ENTRIES   8
#define GDT_SEL_CODE  0x10
#define GDT_SEL_DATA  0x18
#define GDT_SEL_TSS   0x20    /* a 16-byte descriptor: entries 4 and 5 */
/* The TSS sits right after the GDT, inside the low area kept for boot structures. */
#define BOOT_TSS      (LAYOUT_GDT + GDT_ENTRIES * 8)
#define TSS_SIZE      0x68
#define TSS_IOMAP_OFF 0x66    /* an I/O map base past the limit: no I/O bitmap */

#define SEG_TYPE_DATA_RW   0x3  /* read/write, accessed */
#define SEG_TYPE_CODE_RX   0xb  /* execute/read, accessed */
#define SEG_TYPE_TSS_BUSY  0xb  /* 64-bit TSS, busy: what VM entry requires of TR */
#define SEG_TYPE_LDT       0x2

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

_Static_assert(LAYOUT_PD + IDENT_GIB * PAGE_SIZE <= LAYOUT_PT_END, "page directories overflow");
_Static_assert(BOOT_TSS + TSS_SIZE <= LAYOUT_ZERO_PAGE, "TSS runs into the zero page");

static int write_page_tables(const struct guest_mem *mem)
{
	uint64_t *pml4 = gpa_ptr(mem, LAYOUT_PML4, PAGE_SIZE);
	uint64_t *pdpt = gpa_ptr(mem, LAYOUT_PDPT, PAGE_SIZE);
	uint64_t *pd = gpa_ptr(mem, LAYOUT_PD, IDENT_GIB * PAGE_SIZE);
	const uint64_t flags = PTE_P | PTE_RW | PTE_US;

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = LAYOUT_PDPT | flags;
	for (unsigned g = 0; g < IDENT_GIB; g++)
		pdpt[g] = (LAYOUT_PD + g * PAGE_SIZE) | flags;
	for (uint64_t i = 0; i < IDENT_GIB * PT_ENTRIES; i++)
		pd[i] = (i * 2 * MiB) | flags | PTE_PS;
	return 0;
}

/* A legacy 8-byte descriptor from its parts; flags holds bits 52-55 (AVL, L, D/B, G). */
static uint64_t gdt_desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf) << 52) |
	       ((uint64_t)(limit & 0xf0000) << 32) | ((uint64_t)access << 40) |
	       ((uint64_t)(base & 0xffffff) << 16) | (limit & 0xffff);
}

static int write_gdt(const struct guest_mem *mem)
{
	uint64_t gdt[GDT_ENTRIES] = { 0 };
	uint8_t tss[TSS_SIZE] = { 0 };
	uint16_t iomap = TSS_SIZE;

	gdt[GDT_SEL_CODE / 8] = gdt_desc(0, 0xfffff, 0x90 | SEG_TYPE_CODE_RX, 0xa); /* G, L */
	gdt[GDT_SEL_DATA / 8] = gdt_desc(0, 0xfffff, 0x90 | SEG_TYPE_DATA_RW, 0xc); /* G, D/B */
	gdt[GDT_SEL_TSS / 8] = gdt_desc((uint32_t)BOOT_TSS, TSS_SIZE - 1,
					0x80 | SEG_TYPE_TSS_BUSY, 0);
	gdt[GDT_SEL_TSS / 8 + 1] = BOOT_TSS >> 32;
	memcpy(tss + TSS_IOMAP_OFF, &iomap, sizeof(iomap));
	if (guest_write(mem, LAYOUT_GDT, gdt, sizeof(gdt)) < 0 ||
	    guest_write(mem, BOOT_TSS, tss, sizeof(tss)) < 0)
		return -EFAULT;
	return 0;
}

int boot_write_tables(const struct guest_mem *mem)
{
	int ret = write_page_tables(mem);

	if (ret < 0)
		return ret;
	return write_gdt(mem);
}

void boot_vcpu_regs(const struct boot_image *kernel, struct kvm_regs *regs)
{
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2;  /* bit 1 is reserved and always set; IF clear */
	regs->rip = kernel->entry;
	regs->rsp = LAYOUT_BOOT_STACK;
	regs->rsi = LAYOUT_ZERO_PAGE;
}

static struct kvm_segment flat_segment(uint16_t sel, uint8_t type, bool code)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = !code, .s = 1, .l = code, .g = 1,
	};
}

void boot_vcpu_sregs(struct kvm_sregs *sregs)
{
	struct kvm_segment data = flat_segment(GDT_SEL_DATA, SEG_TYPE_DATA_RW, false);

	sregs->cs = flat_segment(GDT_SEL_CODE, SEG_TYPE_CODE_RX, true);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = (struct kvm_segment){
		.base = BOOT_TSS, .limit = TSS_SIZE - 1, .selector = GDT_SEL_TSS,
		.type = SEG_TYPE_TSS_BUSY, .present = 1,
	};
	sregs->ldt = (struct kvm_segment){ .limit = 0xffff, .type = SEG_TYPE_LDT, .present = 1 };
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	/* No IDT yet: an exception before the kernel loads its own becomes a triple fault. */
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	/* What Linux's CR0_STATE has, less AM. */
	sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs->cr2 = 0;
	sregs->cr3 = LAYOUT_PML4;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}
