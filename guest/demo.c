/*
 * demo: the template guest of the README's demo (tools/demo.sh). At CPL3 it
 * builds shared state: a table of pseudo-random words (mib=N MiB at
 * DEMO_TABLE, default 64) and a histogram of their top bytes; says
 * "demo: template ready"; and waits to be forked by the host. Each clone
 * (CHILD_INDEX i of n=clones=N, default 8) then works on the shared table:
 * it scans its own slice of the top-byte range, finds the largest word in it
 * and checks its count against the template's histogram, writes a small
 * result page of its own, logs what it did and how long it took, and exits 0
 * (1 when its count disagrees with the histogram).
 * cmdline: "mib=N" (needs --mem of N + 64 MiB or more), "clones=N" (1..256).
 * LOG:    "demo: template built ..." and "demo: template ready"; each clone one line.
 * REPORT: template: [0] table checksum; clone: [0] words counted, [1] largest word
 */
#include "mix.h"
#include "rt.h"

#define DEMO_TABLE   0x04000000ULL /* 64 MiB: above the image and the runtime */
#define DEMO_RESULT  0x03fff000ULL /* one page each clone writes */

static uint64_t histogram[256];

static uint64_t build_table(volatile uint64_t *table, uint64_t words)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < words; i++) {
		uint64_t w = mix64(i * 0x9e3779b97f4a7c15ULL);

		table[i] = w;
		histogram[w >> 56]++;
		sum += w;
	}
	return sum;
}

static void wait_for_fork(void)
{
	uint64_t last = rt_ticks();

	while (!rt_clone_id()) {
		while (rt_ticks() == last) /* one MMIO exit per tick */
			rt_pause();
		last = rt_ticks();
	}
}

static int clone_work(const uint64_t *table, uint64_t words, unsigned nclones)
{
	unsigned index = (unsigned)rt_ctl_read(VMFORK_CTL_CHILD_INDEX);
	unsigned slice = (index ? index - 1 : 0) % nclones;
	unsigned lo = slice * 256 / nclones, hi = (slice + 1) * 256 / nclones;
	uint64_t t0 = rt_rdtsc(), count = 0, expect = 0, largest = 0;
	volatile uint64_t *result = (volatile uint64_t *)(uintptr_t)DEMO_RESULT;

	for (uint64_t i = 0; i < words; i++) {
		uint64_t w = table[i];
		unsigned top = (unsigned)(w >> 56);

		if (top >= lo && top < hi) {
			count++;
			largest = w > largest ? w : largest;
		}
	}
	for (unsigned b = lo; b < hi; b++)
		expect += histogram[b];
	result[0] = count;
	result[1] = largest;
	rt_printf("demo: clone %lu (child %u) scanned top bytes 0x%02x-0x%02x: %lu words, "
		  "largest 0x%lx, %lu Mcycles%s\n", rt_clone_id(), index, lo, hi - 1, count, largest,
		  (rt_rdtsc() - t0) / 1000000, count == expect ? "" : " MISMATCH");
	rt_report(count);
	rt_report(largest);
	return count == expect ? 0 : 1;
}

RT_CPL0 void cpl0_setup(void)
{
	rt_timer_start(1000);
}

int main(void)
{
	uint64_t mib = rt_arg_u64("mib", 64), nclones = rt_arg_u64("clones", 8);
	uint64_t words = mib * 1024 * 1024 / 8, t0 = rt_rdtsc(), sum;
	uint64_t *table = (uint64_t *)(uintptr_t)DEMO_TABLE;

	if (!nclones || nclones > 256 || !mib || !rt_is_ram(DEMO_TABLE, mib << 20)) {
		rt_printf("demo: need clones=1..256 and --mem of at least %lu MiB\n", mib + 64);
		return 2;
	}
	sum = build_table(table, words);
	rt_report(sum);
	rt_printf("demo: template built a %lu MiB table in %lu Mcycles (checksum 0x%lx)\n", mib,
		  (rt_rdtsc() - t0) / 1000000, sum);
	rt_puts("demo: template ready\n");
	wait_for_fork();
	return clone_work(table, words, (unsigned)nclones);
}
