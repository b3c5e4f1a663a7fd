/*
 * fuzz_loop: the shape of a snapshot fuzzer, for reset-in-place. main marks
 * the reset point (SNAPSHOT, asking the VMM to store RESETS in fl_resets),
 * then each iteration reads fl_resets (its iteration number: no exit needed),
 * checks that its pages hold what they held at the mark,
 * dirties pages=N pages (default 1) of FL_REGION with the iteration number,
 * and writes RESET: the VMM returns it to the mark, pages included.
 * After iters=N resets (default 1000) it reports and exits.
 * mode=floor measures what a reset cannot beat instead: the same iterations
 * with no reset, each writing pages=N pages never written since the mark
 * (copy-on-write faults from the page cache, as after a reset) and making
 * one exit to the VMM (a read of RESETS). Its pages must exist before the
 * mark, so it fills pages * iters of them first (needs that much RAM).
 * cmdline: "pages=N" (1..FL_MAX_PAGES), "iters=N", "mode=floor"
 * REPORT: [0] SNAPSHOT_RESULT (0), then at the end [1] RESETS,
 *         [2] TSC cycles from the mark to the end; on a bad page: 0xbad, the page
 * exit:   0 when every iteration found its pages as at the mark; 1 when not;
 *         2 when the mark failed; 4 on a bad cmdline
 */
#include "rt.h"

#define FL_REGION    0x02000000ULL /* 32 MiB: above the image */
#define FL_MAX_PAGES 256
#define FL_PAGE      4096
#define FL_FRESH     0x5eed5eed5eed5eedULL

static volatile uint64_t fl_resets; /* the VMM stores RESETS here after each reset */

static volatile uint64_t *page(unsigned i)
{
	return (volatile uint64_t *)(uintptr_t)(FL_REGION + (uint64_t)i * FL_PAGE);
}

/* Fresh pages every iteration, one exit each: the floor a reset is measured against. */
static int floor_loop(uint64_t npages, uint64_t iters)
{
	uint64_t total = npages * iters, t0;

	if (!rt_is_ram(FL_REGION, total * FL_PAGE))
		return 4;
	for (uint64_t i = 0; i < total; i++)
		*page((unsigned)i) = FL_FRESH; /* in the page cache before the mark */
	rt_ctl_write(VMFORK_CTL_SNAPSHOT, 0);
	rt_report(rt_ctl_read(VMFORK_CTL_SNAPSHOT_RESULT));
	t0 = rt_rdtsc();
	for (uint64_t n = 0; n < iters; n++) {
		for (uint64_t i = 0; i < npages; i++)
			*page((unsigned)(n * npages + i)) = n;
		(void)rt_ctl_read(VMFORK_CTL_RESETS);
	}
	rt_report(iters);
	rt_report(rt_rdtsc() - t0);
	rt_printf("fuzz_loop: floor of %lu iterations of %lu fresh pages\n", iters, npages);
	return 0;
}

int main(void)
{
	uint64_t npages = rt_arg_u64("pages", 1), iters = rt_arg_u64("iters", 1000), t0, n;

	if (!npages || npages > FL_MAX_PAGES || !rt_is_ram(FL_REGION, FL_MAX_PAGES * FL_PAGE))
		return 4;
	if (rt_arg("mode", &n) && n == 5 && !memcmp(rt_arg("mode", &n), "floor", 5))
		return floor_loop(npages, iters);
	for (unsigned i = 0; i < npages; i++)
		*page(i) = FL_FRESH;
	t0 = rt_rdtsc();
	rt_ctl_write(VMFORK_CTL_SNAPSHOT, (uint64_t)(uintptr_t)&fl_resets);
	/* Every reset comes back here, with the registers and memory of this point. */
	n = fl_resets;
	if (n == 0) {
		uint64_t r = rt_ctl_read(VMFORK_CTL_SNAPSHOT_RESULT);

		rt_report(r);
		if (r)
			return 2;
	}
	if (n >= iters) {
		rt_report(n);
		rt_report(rt_rdtsc() - t0);
		rt_printf("fuzz_loop: %lu resets of %lu dirty pages\n", n, npages);
		return 0;
	}
	for (unsigned i = 0; i < npages; i++) {
		if (*page(i) != FL_FRESH) {
			rt_report(0xbad);
			rt_report(i);
			return 1;
		}
		*page(i) = n;
	}
	rt_ctl_write(VMFORK_CTL_RESET, 1);
	return 3; /* not reached: the reset took us back */
}
