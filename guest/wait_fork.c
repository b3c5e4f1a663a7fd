/*
 * wait_fork: runs until it finds itself in a clone, for snapshot and fork
 * tests. It logs "wait_fork: ready", then polls GENERATION about once per
 * millisecond (LAPIC timer ticks) until it differs from the value at boot.
 * cmdline: "timeout_ms=N" gives up after N ms (default 0: wait forever).
 * LOG:    "wait_fork: ready", then "wait_fork: clone C generation G after T ms"
 * REPORT: [0] GENERATION at boot, then after the change [1] CLONE_ID,
 *         [2] GENERATION, [3] CHILD_INDEX
 * exit:   0x40 | (CLONE_ID & 0x3f) in a clone; 3 on timeout
 */
#include "rt.h"

#define WAIT_FORK_TIMEOUT 3

RT_CPL0 void cpl0_setup(void)
{
	rt_timer_start(1000);
}

int main(void)
{
	uint64_t timeout = rt_arg_u64("timeout_ms", 0);
	uint64_t gen0 = rt_generation(), start = rt_ticks(), last = start, gen = gen0;

	rt_report(gen0);
	rt_puts("wait_fork: ready\n");
	while (gen == gen0) {
		uint64_t now = rt_ticks();

		if (timeout && now - start >= timeout)
			return WAIT_FORK_TIMEOUT;
		if (now != last) { /* one MMIO exit per tick, not per loop */
			last = now;
			gen = rt_generation();
		}
		rt_pause();
	}
	rt_printf("wait_fork: clone %lu generation %lu after %lu ms\n", rt_clone_id(), gen,
		  rt_ticks() - start);
	rt_report(rt_clone_id());
	rt_report(gen);
	rt_report(rt_ctl_read(VMFORK_CTL_CHILD_INDEX));
	return 0x40 | (int)(rt_clone_id() & 0x3f);
}
