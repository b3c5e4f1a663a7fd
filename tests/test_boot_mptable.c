/* The MP table as Linux's mpparse reads it: signatures, checksums and every entry. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/layout.h"
#include "vmm/boot.h"

static struct guest_mem mpt_mem;

static void mpt_setup(void)
{
	cr_assert_eq(guest_mem_create(&mpt_mem, 64 * MiB, NULL), 0);
}

static void mpt_teardown(void)
{
	guest_mem_destroy(&mpt_mem);
}

static uint32_t mpt_le(const uint8_t *p, unsigned len)
{
	uint32_t v = 0;

	while (len--)
		v = v << 8 | p[len];
	return v;
}

static uint8_t mpt_sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

struct mpt_counts {
	unsigned cpus, bsp, buses, ioapics, intsrc, lint;
};

static void mpt_check_entry(const uint8_t *e, unsigned ncpus, struct mpt_counts *c)
{
	switch (e[0]) {
	case 0:
		cr_assert_eq(e[1], c->cpus, "APIC ids must be 0..n-1 in order");
		cr_assert(e[3] & 1, "CPU %u not enabled", e[1]);
		c->bsp += (e[3] & 2) ? 1 : 0;
		cr_assert_eq(!!(e[3] & 2), e[1] == 0, "only CPU 0 is the BSP");
		c->cpus++;
		break;
	case 1:
		cr_assert(!memcmp(e + 2, "ISA   ", 6));
		c->buses++;
		break;
	case 2:
		cr_assert_eq(e[1], ncpus, "IOAPIC id");
		cr_assert_eq(e[3] & 1, 1);
		cr_assert_eq(mpt_le(e + 4, 4), LAYOUT_IOAPIC);
		c->ioapics++;
		break;
	case 3:
		cr_assert_eq(e[1], 0, "INT type");
		cr_assert_eq(e[4], 0, "source bus");
		cr_assert_eq(e[6], ncpus, "destination IOAPIC");
		cr_assert_eq(e[7], e[5] == 0 ? 2 : e[5], "IRQ %u on pin %u", e[5], e[7]);
		cr_assert_neq(e[5], 2, "IRQ2 is the cascade and must not share pin 2");
		c->intsrc++;
		break;
	case 4:
		cr_assert_eq(e[1], e[7] == 0 ? 3 : 1, "LINT0 ExtINT, LINT1 NMI");
		cr_assert_eq(e[6], 0xff, "all local APICs");
		c->lint++;
		break;
	default:
		cr_assert_fail("unknown MP entry type %u", e[0]);
	}
}

/* Validate the whole structure the way a guest would, then count the entries. */
static struct mpt_counts mpt_parse(unsigned ncpus)
{
	const uint8_t *mpf = gpa_ptr(&mpt_mem, LAYOUT_MPTABLE, 16), *t, *e;
	struct mpt_counts c = { 0 };
	uint32_t len, count;

	cr_assert(!memcmp(mpf, "_MP_", 4));
	cr_assert_eq(mpf[8], 1, "length in paragraphs");
	cr_assert_eq(mpf[9], 4, "spec 1.4");
	cr_assert_eq(mpt_sum(mpf, 16), 0, "floating pointer checksum");
	cr_assert_eq(mpf[11], 0, "feature1 0: a config table follows");
	t = gpa_ptr(&mpt_mem, mpt_le(mpf + 4, 4), 44);
	cr_assert_not_null(t);
	cr_assert(!memcmp(t, "PCMP", 4));
	len = mpt_le(t + 4, 2);
	count = mpt_le(t + 34, 2);
	cr_assert_eq(t[6], 4);
	cr_assert_eq(mpt_le(t + 36, 4), LAYOUT_LAPIC);
	t = gpa_ptr(&mpt_mem, mpt_le(mpf + 4, 4), len);
	cr_assert_not_null(t);
	cr_assert_eq(mpt_sum(t, len), 0, "config table checksum");
	cr_assert_leq(mpt_le(mpf + 4, 4) + len, LAYOUT_HIMEM);
	e = t + 44;
	for (uint32_t i = 0; i < count; i++) {
		cr_assert_lt((size_t)(e - t), len, "entry %u past the table's length", i);
		mpt_check_entry(e, ncpus, &c);
		e += e[0] == 0 ? 20 : 8;
	}
	cr_assert_eq((size_t)(e - t), len, "length does not match the entries");
	return c;
}

static void mpt_check(unsigned ncpus)
{
	struct mpt_counts c;

	cr_assert_eq(boot_write_mptable(&mpt_mem, ncpus), 0);
	c = mpt_parse(ncpus);
	cr_assert_eq(c.cpus, ncpus);
	cr_assert_eq(c.bsp, 1);
	cr_assert_eq(c.buses, 1);
	cr_assert_eq(c.ioapics, 1);
	cr_assert_eq(c.intsrc, 15);
	cr_assert_eq(c.lint, 2);
}

TestSuite(boot_mptable, .init = mpt_setup, .fini = mpt_teardown);

Test(boot_mptable, one_cpu) { mpt_check(1); }
Test(boot_mptable, four_cpus) { mpt_check(4); }
Test(boot_mptable, max_cpus) { mpt_check(VM_MAX_CPUS); }

Test(boot_mptable, shrinking_leaves_a_consistent_table)
{
	mpt_check(VM_MAX_CPUS);
	mpt_check(2);
}

Test(boot_mptable, rejects_bad_cpu_counts)
{
	cr_assert_eq(boot_write_mptable(&mpt_mem, 0), -EINVAL);
	cr_assert_eq(boot_write_mptable(&mpt_mem, VM_MAX_CPUS + 1), -EINVAL);
	cr_assert_eq(boot_write_mptable(&mpt_mem, 1000), -EINVAL);
}
