/*
 * smp: every CPU checks in at CPL3. cpl0_setup starts the other CPUs (INIT,
 * SIPI, SIPI); each, and then the boot CPU, takes a ticket from a shared
 * counter with lock xadd and sets the bit of its APIC id in a shared mask.
 * The boot CPU waits (bounded by SMP_WAIT_CYCLES TSC cycles) for all of them.
 * LOG:    "smp: N of M CPUs checked in, APIC ids 0x..."
 * REPORT: [0] CPUs that checked in, [1] NCPUS from the control device,
 *         [2] bit mask of the APIC ids seen (bit id & 63),
 *         [3] CPUs that found themselves at CPL3,
 *         [4] the highest ticket handed out + 1 (equals [0] when no increment was lost)
 * exit:   0 when all NCPUS CPUs checked in at CPL3 with distinct APIC ids, else 1
 */
#include "rt.h"

#define SMP_WAIT_CYCLES 20000000000ULL /* several seconds; only a failure waits this long */

static volatile uint32_t tickets;
static volatile uint32_t checked_in;
static volatile uint32_t at_cpl3;
static volatile uint32_t max_ticket;
static volatile uint64_t apic_mask;

static uint32_t xadd32(volatile uint32_t *p, uint32_t v)
{
	asm volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static void check_in(unsigned cpu __attribute__((unused)))
{
	uint32_t ticket = xadd32(&tickets, 1);
	uint32_t seen = max_ticket;

	while (ticket + 1 > seen &&
	       !__atomic_compare_exchange_n(&max_ticket, &seen, ticket + 1, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	__atomic_fetch_or(&apic_mask, 1ULL << (rt_apic_id() & 63), __ATOMIC_SEQ_CST);
	if (rt_cpl() == 3)
		xadd32(&at_cpl3, 1);
	xadd32(&checked_in, 1); /* last: the boot CPU reads the rest once this counts us */
}

static unsigned bits_set(uint64_t v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

RT_CPL0 void cpl0_setup(void)
{
	rt_smp_start(check_in);
}

int main(void)
{
	unsigned ncpus = rt_ncpus();
	uint64_t start = rt_rdtsc();
	unsigned ids;
	bool ok;

	check_in(0);
	while (checked_in < ncpus && rt_rdtsc() - start < SMP_WAIT_CYCLES)
		rt_pause();
	ids = bits_set(apic_mask);
	ok = checked_in == ncpus && at_cpl3 == ncpus && ids == ncpus && max_ticket == ncpus;
	rt_printf("smp: %u of %u CPUs checked in, APIC ids 0x%lx, %u at CPL3\n",
		  checked_in, ncpus, apic_mask, at_cpl3);
	rt_report(checked_in);
	rt_report(ncpus);
	rt_report(apic_mask);
	rt_report(at_cpl3);
	rt_report(max_ticket);
	return ok ? 0 : 1;
}
