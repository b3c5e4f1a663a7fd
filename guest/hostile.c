/*
 * hostile: pokes the VMM where nothing (or nothing valid) is, then checks
 * that it still works. No poke may stop the VM: bad writes carry
 * HOSTILE_BAD (0x55), so a VMM that took one for an EXIT exits 0x55.
 *   CPL0: inb/inw/inl and outb/outw/outl on ports nobody claims (0x80, 0x1234).
 *   CPL3: 8/4/2/1-byte reads and writes in the MMIO hole (0xe0000000);
 *         control-device reads and writes of 1, 2 and 4 bytes, misaligned
 *         8-byte ones, one crossing the end of its page, unknown offsets,
 *         reads of write-only and writes of read-only registers;
 *         LOG with a GPA in the MMIO hole, beyond RAM, wrapping around,
 *         straddling the end of low RAM (from the e820 map), with len
 *         0xffffffff, and a valid one at an odd address.
 * LOG:    "hostile: misaligned log ok", a line of VMFORK_LOG_MAX bytes starting
 *         "hostile: len 0xffffffff", then "hostile: survived"
 * REPORT: [0] 0x1 (start), [1] inb(0x80), [2] inw(0x1234), [3] inl(0x1234)
 *         (all ones when unclaimed), [4] 8-byte read at 0xe0000000 (all ones),
 *         [5] 1-byte read at 0xe0000003 (0xff), [6] OR of every bad
 *         control-device read (0), [7] 8-byte read at ctl + 0xffc, crossing
 *         into the next page (its low half, from the control device, 0),
 *         [8] MAGIC afterwards (VMFORK_CTL_MAGIC_VALUE), [9] NCPUS afterwards
 *         (unchanged), [10] 0x2 (end)
 * exit:   0
 */
#include "rt.h"

#define HOSTILE_BAD  0x55
#define HOSTILE_HOLE 0xe0000000ULL
#define CTL(off)     (VMFORK_CTL_BASE + (off))
#define E820_COUNT   0x1e8 /* u8 in struct boot_params */
#define E820_TABLE   0x2d0 /* struct boot_e820_entry[] */

static uint64_t port_values[3];

RT_CPL0 void cpl0_setup(void)
{
	uint8_t b;
	uint16_t w;
	uint32_t l;

	asm volatile("inb $0x80, %0" : "=a"(b));
	asm volatile("inw %1, %0" : "=a"(w) : "d"((uint16_t)0x1234));
	asm volatile("inl %1, %0" : "=a"(l) : "d"((uint16_t)0x1234));
	asm volatile("outb %0, $0x80" : : "a"((uint8_t)HOSTILE_BAD));
	asm volatile("outw %0, %1" : : "a"((uint16_t)HOSTILE_BAD), "d"((uint16_t)0x1234));
	asm volatile("outl %0, %1" : : "a"((uint32_t)HOSTILE_BAD), "d"((uint16_t)0x1235));
	port_values[0] = b;
	port_values[1] = w;
	port_values[2] = l;
}

/* One access of exactly size bytes: the compiler must not merge or split these. */
static uint64_t mmio_read(uint64_t addr, unsigned size)
{
	uint64_t v = 0;

	switch (size) {
	case 1: asm volatile("movb (%1), %b0" : "+q"(v) : "r"(addr) : "memory"); break;
	case 2: asm volatile("movw (%1), %w0" : "+r"(v) : "r"(addr) : "memory"); break;
	case 4: asm volatile("movl (%1), %k0" : "+r"(v) : "r"(addr) : "memory"); break;
	default: asm volatile("movq (%1), %0" : "+r"(v) : "r"(addr) : "memory"); break;
	}
	return v;
}

static void mmio_write(uint64_t addr, unsigned size, uint64_t v)
{
	switch (size) {
	case 1: asm volatile("movb %b0, (%1)" : : "q"(v), "r"(addr) : "memory"); break;
	case 2: asm volatile("movw %w0, (%1)" : : "r"(v), "r"(addr) : "memory"); break;
	case 4: asm volatile("movl %k0, (%1)" : : "r"(v), "r"(addr) : "memory"); break;
	default: asm volatile("movq %0, (%1)" : : "r"(v), "r"(addr) : "memory"); break;
	}
}

#define rd8(a)     mmio_read((a), 1)
#define rd16(a)    mmio_read((a), 2)
#define rd32(a)    mmio_read((a), 4)
#define rd64(a)    mmio_read((a), 8)
#define wr8(a, v)  mmio_write((a), 1, (v))
#define wr16(a, v) mmio_write((a), 2, (v))
#define wr32(a, v) mmio_write((a), 4, (v))
#define wr64(a, v) mmio_write((a), 8, (v))

static void poke_hole(uint64_t *first, uint64_t *byte)
{
	*first = rd64(HOSTILE_HOLE);
	*byte = rd8(HOSTILE_HOLE + 3);
	rd16(HOSTILE_HOLE + 6);
	rd32(HOSTILE_HOLE + 0x1001);
	wr64(HOSTILE_HOLE, HOSTILE_BAD);
	wr32(HOSTILE_HOLE + 4, HOSTILE_BAD);
	wr16(HOSTILE_HOLE + 2, HOSTILE_BAD);
	wr8(HOSTILE_HOLE + 0xfff, HOSTILE_BAD);
}

/* Every one of these reads should see 0; returns their OR. */
static uint64_t poke_ctl_reads(void)
{
	return rd8(CTL(VMFORK_CTL_MAGIC)) | rd16(CTL(VMFORK_CTL_MAGIC)) |
	       rd32(CTL(VMFORK_CTL_MAGIC)) | rd32(CTL(VMFORK_CTL_MAGIC + 4)) |
	       rd64(CTL(VMFORK_CTL_MAGIC + 4)) | rd64(CTL(VMFORK_CTL_NCPUS + 1)) |
	       rd64(CTL(0x800)) | rd64(CTL(0xff8)) | rd64(CTL(VMFORK_CTL_EXIT)) |
	       rd64(CTL(VMFORK_CTL_LOG)) | rd64(CTL(VMFORK_CTL_REPORT));
}

/* None of these may stop the VM, change a register or add a report. */
static void poke_ctl_writes(void)
{
	wr8(CTL(VMFORK_CTL_EXIT), HOSTILE_BAD);
	wr16(CTL(VMFORK_CTL_EXIT), HOSTILE_BAD);
	wr32(CTL(VMFORK_CTL_EXIT), HOSTILE_BAD);
	wr32(CTL(VMFORK_CTL_EXIT + 4), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_EXIT + 1), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_EXIT + 4), HOSTILE_BAD);
	wr32(CTL(VMFORK_CTL_REPORT), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_REPORT + 2), HOSTILE_BAD);
	wr64(CTL(0xffc), HOSTILE_BAD); /* half in the next page */
	wr64(CTL(0x800), HOSTILE_BAD);
	wr64(CTL(0xff8), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_MAGIC), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_NCPUS), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_CLONE_ID), HOSTILE_BAD);
	wr64(CTL(VMFORK_CTL_FORK_RESULT), HOSTILE_BAD);
}

/* End of the e820 RAM entry that ends highest below 4 GiB (0 if none). */
static uint64_t low_ram_end(void)
{
	const uint8_t *zp = (const uint8_t *)(uintptr_t)0x7000; /* RSI at entry */
	unsigned n = zp[E820_COUNT];
	uint64_t end = 0;

	for (unsigned i = 0; i < n && i < 128; i++) {
		const uint8_t *e = zp + E820_TABLE + 20 * i;
		uint64_t addr, size;
		uint32_t type;

		memcpy(&addr, e, 8);
		memcpy(&size, e + 8, 8);
		memcpy(&type, e + 16, 4);
		if (type == 1 && addr + size <= 0x100000000ULL && addr + size > end)
			end = addr + size;
	}
	return end;
}

static char long_msg[8 + VMFORK_LOG_MAX + 64] __attribute__((aligned(8)));
static char odd_msg[64] __attribute__((aligned(8)));

static void poke_log(void)
{
	static const char odd_text[] = "hostile: misaligned log ok\n";
	struct vmfork_log_msg *m = (struct vmfork_log_msg *)long_msg;
	uint64_t end = low_ram_end();

	wr64(CTL(VMFORK_CTL_LOG), HOSTILE_HOLE);
	wr64(CTL(VMFORK_CTL_LOG), VMFORK_CTL_BASE);
	wr64(CTL(VMFORK_CTL_LOG), 0x40000000000ULL);      /* 4 TiB: beyond any RAM we get */
	wr64(CTL(VMFORK_CTL_LOG), 0xfffffffffffffffcULL); /* header wraps around */
	if (end >= 0x200000) {
		*(volatile uint32_t *)(uintptr_t)(end - 4) = 16; /* header half in RAM */
		wr64(CTL(VMFORK_CTL_LOG), end - 4);
		*(volatile uint32_t *)(uintptr_t)(end - 8) = 16; /* text beyond RAM */
		*(volatile uint32_t *)(uintptr_t)(end - 4) = 0;
		wr64(CTL(VMFORK_CTL_LOG), end - 8);
	}
	memset(m->text, '.', VMFORK_LOG_MAX + 32);
	memcpy(m->text, "hostile: len 0xffffffff", 23);
	m->text[VMFORK_LOG_MAX - 1] = '\n';
	m->len = 0xffffffffu;
	wr64(CTL(VMFORK_CTL_LOG), (uintptr_t)m);
	m = (struct vmfork_log_msg *)(odd_msg + 1);
	m->len = sizeof(odd_text) - 1;
	m->reserved = 0;
	memcpy(m->text, odd_text, sizeof(odd_text) - 1);
	wr64(CTL(VMFORK_CTL_LOG), (uintptr_t)m);
}

int main(void)
{
	uint64_t hole_first, hole_byte, bad_reads, crossing;

	rt_report(1);
	for (int i = 0; i < 3; i++)
		rt_report(port_values[i]);
	poke_hole(&hole_first, &hole_byte);
	bad_reads = poke_ctl_reads();
	crossing = rd64(CTL(0xffc));
	poke_ctl_writes();
	poke_log();
	rt_report(hole_first);
	rt_report(hole_byte);
	rt_report(bad_reads);
	rt_report(crossing & 0xffffffffULL);
	rt_report(rt_ctl_read(VMFORK_CTL_MAGIC));
	rt_report(rt_ncpus());
	rt_report(2);
	rt_puts("hostile: survived\n");
	return 0;
}
