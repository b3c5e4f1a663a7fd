/*
 * idle: a guest that does nothing, for counting and weighing idle clones.
 * cpl0_setup logs "idle: ready", reports 1, then halts with interrupts off
 * forever: its vCPU sleeps in KVM and costs no CPU; so do its clones.
 * REPORT: [0] 1
 * exit:   never
 */
#include "rt.h"

RT_CPL0 void cpl0_setup(void)
{
	rt_puts("idle: ready\n");
	rt_report(1);
	for (;;)
		asm volatile("cli; hlt" ::: "memory");
}

int main(void)
{
	return 1; /* not reached */
}
