/* Identity page tables, the boot GDT and TSS, and the boot vCPU's registers. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/layout.h"
#include "vmm/boot.h"

#define TBL_PTE_FLAGS 0x7ULL    /* present, writable, user */
#define TBL_PS        0x80ULL

static struct guest_mem tbl_mem;

static void tbl_setup(void)
{
	cr_assert_eq(guest_mem_create(&tbl_mem, 64 * MiB, NULL), 0);
	memset(gpa_ptr(&tbl_mem, 0, LAYOUT_PT_END), 0xee, LAYOUT_PT_END);
	cr_assert_eq(boot_write_tables(&tbl_mem), 0);
}

static void tbl_teardown(void)
{
	guest_mem_destroy(&tbl_mem);
}

static uint64_t tbl_read64(uint64_t gpa)
{
	uint64_t v;

	cr_assert_eq(guest_read(&tbl_mem, gpa, &v, sizeof(v)), 0);
	return v;
}

/* A 4-level walk as the MMU does it; returns the physical address or ~0 when not mapped. */
static uint64_t tbl_walk(uint64_t va, uint64_t need)
{
	uint64_t e = tbl_read64(LAYOUT_PML4 + ((va >> 39) & 511) * 8);

	if ((e & need) != need)
		return ~0ULL;
	e = tbl_read64((e & 0xffffffffff000ULL) + ((va >> 30) & 511) * 8);
	if ((e & need) != need)
		return ~0ULL;
	e = tbl_read64((e & 0xffffffffff000ULL) + ((va >> 21) & 511) * 8);
	if ((e & need) != need || !(e & TBL_PS))
		return ~0ULL;
	return (e & 0xfffffffe00000ULL) | (va & (2 * MiB - 1));
}

TestSuite(boot_tables, .init = tbl_setup, .fini = tbl_teardown);

Test(boot_tables, identity_map_covers_4g)
{
	static const uint64_t probes[] = {
		0, 0x1234, 0x1fffff, 0x200000, 0x1000000, 0xbfffffff, 0xc0000000,
		LAYOUT_CTL_MMIO + 8, LAYOUT_IOAPIC, 0xffffffff,
	};

	for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		cr_assert_eq(tbl_walk(probes[i], TBL_PTE_FLAGS), probes[i], "va %#llx",
			     (unsigned long long)probes[i]);
	cr_assert_eq(tbl_walk(0x100000000ULL, 1), ~0ULL, "4 GiB and up must be unmapped");
	cr_assert_eq(tbl_walk(0xffffffff81000000ULL, 1), ~0ULL);
	cr_assert_eq(tbl_read64(LAYOUT_PML4 + 8), 0, "stale PML4 entry left");
	cr_assert_eq(tbl_read64(LAYOUT_PDPT + 4 * 8), 0, "stale PDPT entry left");
}

/* Decode the base and limit of a legacy descriptor. */
static void tbl_desc(uint64_t d, uint32_t *base, uint32_t *limit, uint8_t *access,
		     uint8_t *flags)
{
	*base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
	*limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	*access = (uint8_t)(d >> 40);
	*flags = (uint8_t)((d >> 52) & 0xf);
}

Test(boot_tables, gdt_matches_sregs)
{
	struct kvm_sregs s;
	uint32_t base, limit;
	uint8_t access, flags;

	memset(&s, 0, sizeof(s));
	s.apic_base = 0xfee00900;
	s.interrupt_bitmap[1] = 42;
	boot_vcpu_sregs(&s);
	cr_assert_eq(s.apic_base, 0xfee00900, "apic_base must be kept");
	cr_assert_eq(s.interrupt_bitmap[1], 42);
	cr_assert_eq(s.gdt.base, LAYOUT_GDT);
	cr_assert_eq(s.gdt.limit, 63);
	cr_assert_eq(tbl_read64(LAYOUT_GDT), 0);
	cr_assert_eq(tbl_read64(LAYOUT_GDT + 8), 0);

	tbl_desc(tbl_read64(LAYOUT_GDT + s.cs.selector), &base, &limit, &access, &flags);
	cr_assert_eq(s.cs.selector, 0x10);
	cr_assert_eq(access, 0x90 | s.cs.type);   /* present, DPL 0, code/data */
	cr_assert_eq(flags, 0xa, "code needs G and L, not D");
	cr_assert(s.cs.l && !s.cs.db && s.cs.present && s.cs.s && s.cs.dpl == 0);

	tbl_desc(tbl_read64(LAYOUT_GDT + s.ds.selector), &base, &limit, &access, &flags);
	cr_assert_eq(s.ds.selector, 0x18);
	cr_assert_eq(access, 0x90 | s.ds.type);
	cr_assert_eq(flags, 0xc);
	cr_assert_eq(limit, 0xfffff);
	cr_assert(s.ss.selector == 0x18 && s.es.selector == 0x18 && s.fs.selector == 0x18 &&
		  s.gs.selector == 0x18);

	tbl_desc(tbl_read64(LAYOUT_GDT + s.tr.selector), &base, &limit, &access, &flags);
	cr_assert_eq(s.tr.selector, 0x20);
	cr_assert_eq(s.tr.type, 11, "TR must hold a busy 64-bit TSS");
	cr_assert_eq(access, 0x80 | 11);
	cr_assert_eq(base, s.tr.base);
	cr_assert_eq(limit, s.tr.limit);
	cr_assert_geq(limit, 0x67);
	cr_assert_eq(tbl_read64(LAYOUT_GDT + s.tr.selector + 8), 0, "TSS base above 4 GiB");
	cr_assert(s.tr.base >= LAYOUT_GDT + 64 && s.tr.base + limit < LAYOUT_ZERO_PAGE);
}

Test(boot_tables, control_registers)
{
	struct kvm_sregs s;

	memset(&s, 0xff, sizeof(s));
	boot_vcpu_sregs(&s);
	cr_assert_eq(s.cr0 & 0x80000001ULL, 0x80000001ULL, "PE and PG");
	cr_assert_eq(s.cr0 & (3ULL << 29), 0, "caching must not be disabled (CD/NW)");
	cr_assert_eq(s.cr4 & 0x20, 0x20, "PAE");
	cr_assert_eq(s.cr3, LAYOUT_PML4);
	cr_assert_eq(s.efer & 0x500, 0x500, "LME and LMA");
	cr_assert_eq(s.cs.base, 0);
	cr_assert_eq(s.ldt.selector, 0);
}

Test(boot_tables, general_registers)
{
	struct boot_image k = { .entry = 0x1000000 };
	struct kvm_regs r;

	memset(&r, 0xff, sizeof(r));
	boot_vcpu_regs(&k, &r);
	cr_assert_eq(r.rip, 0x1000000);
	cr_assert_eq(r.rsi, LAYOUT_ZERO_PAGE);
	cr_assert_eq(r.rsp, LAYOUT_BOOT_STACK);
	cr_assert_eq(r.rflags, 2);
	cr_assert_eq(r.rax | r.rbx | r.rcx | r.rdx | r.rdi | r.rbp | r.r15, 0);
}
