/*
 * timer: the LAPIC timer interrupts CPL3 code periodically.
 * cpl0_setup starts a 1 ms periodic timer (1 GHz APIC bus assumed, as KVM's);
 * main spins at CPL3 for TIMER_CYCLES TSC cycles, reading the TSC all along.
 * LOG:    "timer: N ticks in C cycles"
 * REPORT: [0] ticks seen during the interval, [1] TSC cycles the interval took,
 *         [2] 1 if the TSC never went backwards, else 0
 * exit:   0 when at least one tick came and the TSC was monotonic, else 1
 */
#include "rt.h"

/* About 50 ms on a 2-4 GHz TSC: tens of ticks, yet quick. */
#define TIMER_CYCLES 150000000ULL

RT_CPL0 void cpl0_setup(void)
{
	rt_timer_start(1000);
}

int main(void)
{
	uint64_t t0 = rt_rdtsc(), prev = t0, now = t0, ticks0 = rt_ticks(), ticks;
	bool monotonic = true;

	while (now - t0 < TIMER_CYCLES) {
		now = rt_rdtsc();
		if (now < prev)
			monotonic = false;
		prev = now;
	}
	ticks = rt_ticks() - ticks0;
	rt_printf("timer: %lu ticks in %lu cycles\n", ticks, now - t0);
	rt_report(ticks);
	rt_report(now - t0);
	rt_report(monotonic);
	return ticks > 0 && monotonic ? 0 : 1;
}
