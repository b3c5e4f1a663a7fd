/*
 * A harness's side of vm-fork fuzz (docs/fuzzing.md): the mark, the input,
 * the end of a run, and the coverage callback of clang's
 * -fsanitize-coverage=trace-pc-guard, which writes AFL-style edges
 * (prev ^ cur) straight into the map the VMM mapped into the guest.
 * This file is built without coverage: the callback must not call itself.
 */
#include "internal.h"

/* Written by the linker (guest.ld) around the guards of the files built with coverage. */
extern uint32_t __start___sancov_guards[], __stop___sancov_guards[];

static uint8_t *volatile cov_map;
static volatile uint64_t fuzz_resets;
static uint32_t cov_mask;
static uint32_t cov_prev;

/* A guard's id: a hash of its index, so that prev ^ cur spreads over the map. */
static uint32_t guard_id(uint32_t index)
{
	uint32_t x = index * 0x9e3779b1u + 0x7f4a7c15u;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return x ? x : 1;
}

void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop)
{
	for (uint32_t *g = start; g < stop; g++)
		if (!*g)
			*g = guard_id((uint32_t)(g - start));
}

void __sanitizer_cov_trace_pc_guard(uint32_t *guard)
{
	uint8_t *map = cov_map;
	uint32_t cur = *guard;

	if (!map || !cur)
		return;
	map[(cur ^ cov_prev) & cov_mask]++;
	cov_prev = cur >> 1;
}

bool rt_fuzzing(void)
{
	return rt_ctl_read(VMFORK_CTL_FUZZ_INPUT) != 0;
}

const uint8_t *rt_fuzz_start(size_t *len)
{
	uint64_t input = rt_ctl_read(VMFORK_CTL_FUZZ_INPUT);
	uint64_t map = rt_ctl_read(VMFORK_CTL_FUZZ_MAP);
	const volatile struct vmfork_fuzz_input *in;
	size_t n;

	/* fuzz=wait: a guest to snapshot (vm-fork fuzz --snapshot), waiting to be fuzzed. */
	if (!input && rt_arg("fuzz", &n) && n == 4 && !memcmp(rt_arg("fuzz", &n), "wait", 4)) {
		rt_printf("rt: waiting for vm-fork fuzz\n");
		while (!(input = rt_ctl_read(VMFORK_CTL_FUZZ_INPUT)))
			for (uint64_t t = rt_rdtsc(); rt_rdtsc() - t < 1000000;)
				rt_pause();
		map = rt_ctl_read(VMFORK_CTL_FUZZ_MAP);
	}
	if (!input)
		return NULL;
	/* No constructors run here: number the guards before the first edge. */
	__sanitizer_cov_trace_pc_guard_init(__start___sancov_guards, __stop___sancov_guards);
	cov_mask = (uint32_t)rt_ctl_read(VMFORK_CTL_FUZZ_MAP_SIZE) - 1;
	cov_map = map ? (uint8_t *)(uintptr_t)map : NULL;
	rt_ctl_write(VMFORK_CTL_SNAPSHOT, (uintptr_t)&fuzz_resets);
	/*
	 * Every run starts here, with this run's input in place. The VMM stores
	 * its reset count in fuzz_resets: 0 only right after the mark, so the
	 * mark's result costs an exit once, not every run.
	 */
	if (!fuzz_resets && rt_ctl_read(VMFORK_CTL_SNAPSHOT_RESULT))
		return NULL;
	in = (const volatile struct vmfork_fuzz_input *)(uintptr_t)input;
	*len = (size_t)in->len;
	return (const uint8_t *)(uintptr_t)(input + sizeof(*in));
}

void rt_fuzz_done(void)
{
	rt_ctl_write(VMFORK_CTL_FUZZ_DONE, 0);
	rt_panic("fuzz: DONE returned: not under vm-fork fuzz");
}

void rt_fuzz_crash(uint64_t code)
{
	rt_ctl_write(VMFORK_CTL_FUZZ_CRASH, code);
	rt_panic("fuzz: crash %#lx (not under vm-fork fuzz)", code);
}

/* ---- Guard pages ---- */

#define PTE_P   (1ULL << 0)
#define PTE_PS  (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL
#define RT_GUARD_TABLES 4

static uint64_t guard_tables[RT_GUARD_TABLES][512] __attribute__((aligned(4096)));
static unsigned guard_tables_used;

static uint64_t *table_entry(uint64_t table, unsigned index)
{
	return (uint64_t *)(uintptr_t)((table & PTE_ADDR) + index * 8);
}

/* The page directory entry that maps addr (identity-mapped tables). */
static uint64_t *pde_of(uint64_t addr)
{
	uint64_t *pml4e = table_entry(read_cr3(), (addr >> 39) & 511);
	uint64_t *pdpte = table_entry(*pml4e, (addr >> 30) & 511);

	return table_entry(*pdpte, (addr >> 21) & 511);
}

RT_CPL0 bool rt_guard_page(uint64_t addr)
{
	uint64_t *pde = pde_of(addr), *pt;

	if (*pde & PTE_PS) { /* a 2 MiB page: split it into 4 KiB ones first */
		uint64_t base = *pde & ~((2ULL << 20) - 1) & PTE_ADDR;
		uint64_t flags = *pde & 0xfff & ~PTE_PS;

		if (guard_tables_used == RT_GUARD_TABLES)
			return false;
		pt = guard_tables[guard_tables_used++];
		for (unsigned i = 0; i < 512; i++)
			pt[i] = (base + i * 4096ULL) | flags;
		*pde = (uint64_t)(uintptr_t)pt | (flags & 0x3f);
	}
	pt = (uint64_t *)(uintptr_t)(*pde & PTE_ADDR);
	pt[(addr >> 12) & 511] &= ~PTE_P;
	write_cr3(read_cr3()); /* drop the TLB's entries for the old mapping */
	return true;
}
