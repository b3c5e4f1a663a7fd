/*
 * Exceptions and unexpected interrupts, at CPL0. An exception at an address
 * listed in the exception table is counted and resumed at its fixup; any
 * other ends the VM with RT_EXIT_FAULT_BASE + vector after logging where it
 * happened. A #UD at rt_park_insn is how CPL3 code asks to halt its CPU, an
 * int3 in rt_cpl0_trap how it asks to run a function at CPL0.
 */
#pragma GCC target("general-regs-only")
#include "internal.h"
#include "core/x86_vectors.h"

struct extable_entry {
	uint64_t key, fixup;
};

/* Defined by guest.ld around the .rt_extable input sections. */
extern const struct extable_entry rt_extable_start[], rt_extable_end[];

static volatile uint64_t counts[RT_NEXCEPTIONS];
static volatile struct rt_fault last_fault;
static volatile unsigned dying;

static uint64_t extable_find(uint64_t rip)
{
	for (const struct extable_entry *e = rt_extable_start; e < rt_extable_end; e++)
		if (e->key == rip)
			return e->fixup;
	return 0;
}

static rt_noreturn void die(const struct rt_trap_frame *f)
{
	unsigned v = f->vector;
	int status = v < RT_NEXCEPTIONS ? RT_EXIT_FAULT_BASE + (int)v : RT_EXIT_BAD_IRQ;
	const char *name = v < RT_NEXCEPTIONS ? x86_vector_names[v] : "interrupt";

	/* Only the first CPU to get here logs: a fault while logging must not loop. */
	if (!__atomic_exchange_n(&dying, 1, __ATOMIC_SEQ_CST))
		rt_printf("rt: unexpected %s (vector %u) at rip 0x%lx cpl %lu err 0x%lx "
			  "cr2 0x%lx rsp 0x%lx apic %u: exit 0x%x\n",
			  name ? name : "exception", v, f->rip, f->cs & 3, f->error,
			  v == RT_VEC_PF ? read_cr2() : 0, f->rsp, lapic_read(LAPIC_ID) >> 24,
			  status);
	/* Under vm-fork fuzz the run ends as a crash and the VM goes back to its mark. */
	if (v < RT_NEXCEPTIONS && rt_fuzzing())
		rt_ctl_write(VMFORK_CTL_FUZZ_CRASH, VMFORK_FUZZ_CRASH_EXCEPTION | v);
	rt_exit(status);
}

void rt_trap(struct rt_trap_frame *f)
{
	uint64_t fixup;

	if (f->vector == RT_VEC_UD && f->rip == (uintptr_t)rt_park_insn)
		rt_park_cpl0();
	if (f->vector == RT_VEC_BP && f->rip == (uintptr_t)rt_cpl0_trap_ret) {
		f->rax = ((uint64_t (*)(uint64_t))f->rax)(f->rdi);
		return;
	}
	fixup = f->vector < RT_NEXCEPTIONS ? extable_find(f->rip) : 0;
	if (!fixup)
		die(f);
	last_fault.vector = f->vector;
	last_fault.error = f->error;
	last_fault.rip = f->rip;
	last_fault.cr2 = f->vector == RT_VEC_PF ? read_cr2() : 0;
	__atomic_fetch_add(&counts[f->vector], 1, __ATOMIC_SEQ_CST);
	f->rip = fixup;
}

uint64_t rt_exception_count(unsigned vector)
{
	return vector < RT_NEXCEPTIONS ? counts[vector] : 0;
}

struct rt_fault rt_last_fault(void)
{
	struct rt_fault f = {
		last_fault.vector, last_fault.error, last_fault.rip, last_fault.cr2,
	};

	return f;
}

uint64_t rt_cpl0_call(uint64_t (*fn)(uint64_t arg), uint64_t arg)
{
	return rt_cpl() == 0 ? fn(arg) : rt_cpl0_trap(fn, arg);
}
