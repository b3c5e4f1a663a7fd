/*
 * fork_bomb: a guest that forks itself for ever. Every VM, the booted one and
 * each clone, writes fanout to FORK again and again, parents and children
 * alike: only the VMM's limits (fork/vmm.h, struct vmm_limits) bound how many
 * VMs there are. A FORK answered -EBUSY is retried at once; any other error
 * is reported the first time this VM sees it, and the VM keeps asking.
 *
 * cmdline: "fanout=F" (1..64, default 4)
 * REPORT:  each distinct negative FORK_RESULT (two's complement) this VM saw,
 *          in the order it first saw them, then goes on
 * exit:    never by itself; 4 on a bad cmdline
 */
#include "rt.h"

#define FB_EBUSY    16
#define FB_MAX_SEEN 8
#define FB_WAIT_CYCLES 200000 /* some tens of microseconds between refused requests */

static int64_t seen[FB_MAX_SEEN];
static unsigned nseen;

static void note_error(int64_t res)
{
	for (unsigned i = 0; i < nseen; i++)
		if (seen[i] == res)
			return;
	if (nseen < FB_MAX_SEEN) {
		seen[nseen++] = res;
		rt_report((uint64_t)res);
	}
}

int main(void)
{
	uint64_t fanout = rt_arg_u64("fanout", 4);

	if (fanout < 1 || fanout > VMFORK_MAX_GUEST_FORK)
		return 4;
	for (;;) {
		int64_t res;

		rt_ctl_write(VMFORK_CTL_FORK, fanout);
		res = (int64_t)rt_ctl_read(VMFORK_CTL_FORK_RESULT);
		if (res >= 0 || res == -FB_EBUSY)
			continue;
		/* A clone starts with its parent's memory: what its parent saw, it has seen. */
		note_error(res);
		for (uint64_t t0 = rt_rdtsc(); rt_rdtsc() - t0 < FB_WAIT_CYCLES;)
			rt_pause();
	}
}
