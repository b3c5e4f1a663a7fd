/*
 * The local APIC: the periodic timer and starting the other CPUs the x86 way
 * (INIT, SIPI, SIPI to all but self, as the MP specification describes).
 */
#pragma GCC target("general-regs-only")
#include "internal.h"

void (*volatile rt_ap_fn)(unsigned cpu);

/*
 * KVM's LAPIC timer counts at 1 GHz (a 1 ns APIC bus cycle) unless the VMM
 * changes it; we divide by 16, so the period is period_us * 62.5 counts.
 */
void rt_timer_start(uint32_t period_us)
{
	uint64_t count = (uint64_t)period_us * 1000 / 16;

	if (count == 0)
		count = 1;
	if (count > 0xffffffffULL)
		count = 0xffffffffULL;
	lapic_write(LAPIC_TIMER_DIV, LAPIC_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, RT_VEC_TIMER | LAPIC_TIMER_PERIODIC);
	lapic_write(LAPIC_TIMER_INIT, (uint32_t)count);
}

uint64_t rt_ticks(void)
{
	return rt_tick_count;
}

/* Wait (bounded) until the previous IPI left the ICR, then send one. */
static void send_ipi(uint32_t icr_lo)
{
	for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		asm volatile("pause");
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, icr_lo);
}

static void trampoline_install(void)
{
	size_t len = (size_t)(rt_tramp_end - rt_tramp_start);
	uint8_t *base = (uint8_t *)(uintptr_t)RT_TRAMP_BASE;
	struct rt_tramp_params *p;

	memcpy(base, rt_tramp_start, len);
	p = (struct rt_tramp_params *)(base + (rt_tramp_params - rt_tramp_start));
	p->cr3 = (uint32_t)read_cr3(); /* the VMM's tables at 0x9000: below 4 GiB */
	p->cr4 = (uint32_t)(read_cr4() & ~(uint64_t)CR4_PCIDE);
	p->efer = (uint32_t)(rdmsr(MSR_EFER) & ~(uint64_t)EFER_LMA);
	p->cr0 = (uint32_t)read_cr0();
	p->entry64 = (uintptr_t)rt_ap_entry64;
}

/*
 * The 10 ms wait after INIT and the 200 us wait after the first SIPI that
 * old processors need are left out, as Linux does on current CPUs and under
 * a hypervisor: KVM delivers INIT before SIPI, and a CPU that already runs
 * ignores the second SIPI.
 */
unsigned rt_smp_start(void (*fn)(unsigned cpu))
{
	static bool started; /* a second INIT would reset CPUs that already run */
	unsigned n = rt_ncpus();

	if (n > RT_MAX_CPUS)
		n = RT_MAX_CPUS;
	if (n <= 1 || started)
		return 0;
	started = true;
	rt_ap_fn = fn;
	trampoline_install();
	send_ipi(ICR_ALL_BUT_SELF | ICR_LEVEL | ICR_ASSERT | ICR_INIT);
	send_ipi(ICR_ALL_BUT_SELF | ICR_LEVEL | ICR_INIT); /* de-assert */
	send_ipi(ICR_ALL_BUT_SELF | ICR_STARTUP | (RT_TRAMP_BASE >> 12));
	send_ipi(ICR_ALL_BUT_SELF | ICR_STARTUP | (RT_TRAMP_BASE >> 12));
	return n - 1;
}

bool rt_wait_cpus(unsigned n, uint64_t max_cycles)
{
	uint64_t start = rt_rdtsc();

	while (rt_cpus_online() < n) {
		if (rt_rdtsc() - start > max_cycles)
			return false;
		rt_pause();
	}
	return true;
}
