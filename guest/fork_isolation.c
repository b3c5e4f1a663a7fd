/*
 * fork_isolation: the memory of a fork's VMs is their own. The guest fills
 * a region with the base pattern, says it is ready and waits until the host,
 * after forking it, writes the go word into the mailbox of the VM that should
 * go on (each VM's own memory: the host may let the parent and some children
 * go and keep others waiting). A VM that goes checks that its region still
 * holds the base pattern, writes the pattern of its own CLONE_ID over it and
 * reads it all back. The host checks from outside that a sibling still
 * waiting sees the base pattern.
 *
 * Guest-physical addresses (the host reads and writes them; need --mem 32M or more):
 *   FI_MAILBOX 0x00fff000, one page the guest zeroes at boot:
 *     +0x00 go     u64, written by the host: nonzero lets this VM go on
 *     +0x08 state  u64, written by the guest: 1 base pattern written (ready),
 *                  2 base checked after go, 3 own pattern written and checked
 *     +0x10 clone  u64, CLONE_ID the guest saw after go
 *     +0x18 bad    u64, wrong words the guest saw (base and own checks)
 *   FI_REGION 0x01000000, 8 MiB (FI_REGION_SIZE): the patterns.
 * Patterns: the u64 at guest-physical address a (8-byte aligned, in the
 * region) is mix64(a ^ key), where mix64 is the splitmix64 finaliser
 * (x ^= x >> 30; x *= 0xbf58476d1ce4e5b9; x ^= x >> 27; x *= 0x94d049bb133111eb;
 * x ^= x >> 31) and key is FI_BASE_KEY (0xba5eba5eba5eba5e) for the base
 * pattern, FI_OWN_KEY ^ CLONE_ID * 0x9e3779b97f4a7c15 (FI_OWN_KEY =
 * 0x0c0ffee00c0ffee0) for a VM's own (CLONE_ID 0, the booted VM, included).
 *
 * cmdline: "timeout_ms=N" give up waiting after N ms (default 0: wait forever);
 *          "go=1" do not wait for the host (an unforked run of the whole path).
 * LOG:    "fork_isolation: ready", then "fork_isolation: clone C ... ok" or what was wrong
 * REPORT: [0] 1 (ready: base pattern written), then after go [1] CLONE_ID,
 *         [2] CHILD_INDEX, [3] GENERATION, [4] the go word, [5] words that were
 *         not the base pattern at go, [6] words that were not its own pattern
 *         after writing it, [7] the sum (mod 2^64) of the region's words read back
 * exit:   0 when every word was right; 1 when some were not; 3 on timeout;
 *         4 when the mailbox and region are not free RAM (the image ends above
 *         FI_MAILBOX, or RAM is too small)
 */
#include "mix.h"
#include "rt.h"

#define FI_MAILBOX     0x00fff000ULL
#define FI_REGION      0x01000000ULL
#define FI_REGION_SIZE (8ULL << 20)
#define FI_BASE_KEY    0xba5eba5eba5eba5eULL
#define FI_OWN_KEY     0x0c0ffee00c0ffee0ULL
#define FI_ID_STEP     0x9e3779b97f4a7c15ULL

#define FI_BAD_WORDS 1
#define FI_TIMEOUT   3
#define FI_NO_ROOM   4

enum { FI_READY = 1, FI_BASE_CHECKED = 2, FI_DONE = 3 };

struct fi_mailbox {
	volatile uint64_t go, state, clone, bad;
};

extern char _end[]; /* guest/rt/guest.ld: the end of the image, .bss included */

static struct fi_mailbox *const mailbox = (struct fi_mailbox *)(uintptr_t)FI_MAILBOX;
static uint64_t *const region = (uint64_t *)(uintptr_t)FI_REGION;

static inline uint64_t pattern(size_t i, uint64_t key)
{
	return mix64((FI_REGION + i * 8) ^ key);
}

static void fill(uint64_t key)
{
	for (size_t i = 0; i < FI_REGION_SIZE / 8; i++)
		region[i] = pattern(i, key);
}

/* Words that differ from the pattern; *sum gets the sum of all words. */
static uint64_t check(uint64_t key, uint64_t *sum)
{
	uint64_t bad = 0, s = 0;

	for (size_t i = 0; i < FI_REGION_SIZE / 8; i++) {
		uint64_t w = ((volatile uint64_t *)region)[i];

		bad += w != pattern(i, key);
		s += w;
	}
	*sum = s;
	return bad;
}

/* Until the host writes the go word, or timeout_ms (0: never) passes. */
static uint64_t wait_go(uint64_t timeout_ms)
{
	uint64_t start = rt_ticks(), go;

	while (!(go = mailbox->go)) {
		if (timeout_ms && rt_ticks() - start >= timeout_ms)
			return 0;
		rt_pause();
	}
	return go;
}

RT_CPL0 void cpl0_setup(void)
{
	rt_timer_start(1000);
}

int main(void)
{
	uint64_t timeout = rt_arg_u64("timeout_ms", 0), r[8], sum;

	if ((uintptr_t)_end > FI_MAILBOX || !rt_is_ram(FI_MAILBOX, FI_REGION + FI_REGION_SIZE -
							 FI_MAILBOX)) {
		rt_printf("fork_isolation: no room: image ends at %p, region needs RAM to 0x%llx\n",
			  _end, FI_REGION + FI_REGION_SIZE);
		return FI_NO_ROOM;
	}
	memset(mailbox, 0, 4096);
	fill(FI_BASE_KEY);
	mailbox->state = FI_READY;
	rt_report(1);
	rt_puts("fork_isolation: ready\n");
	r[4] = rt_arg_u64("go", 0) ? 1 : wait_go(timeout);
	if (!r[4]) {
		rt_printf("fork_isolation: no go after %lu ms\n", timeout);
		return FI_TIMEOUT;
	}
	r[1] = rt_clone_id();
	r[2] = rt_ctl_read(VMFORK_CTL_CHILD_INDEX);
	r[3] = rt_generation();
	mailbox->clone = r[1];
	r[5] = check(FI_BASE_KEY, &sum);
	mailbox->state = FI_BASE_CHECKED;
	fill(FI_OWN_KEY ^ r[1] * FI_ID_STEP);
	r[6] = check(FI_OWN_KEY ^ r[1] * FI_ID_STEP, &r[7]);
	mailbox->bad = r[5] + r[6];
	mailbox->state = FI_DONE;
	rt_printf("fork_isolation: clone %lu index %lu gen %lu go 0x%lx: %lu base and %lu own "
		  "words wrong, sum 0x%lx: %s\n", r[1], r[2], r[3], r[4], r[5], r[6], r[7],
		  r[5] + r[6] ? "FAILED" : "ok");
	for (int i = 1; i < 8; i++)
		rt_report(r[i]);
	return r[5] + r[6] ? FI_BAD_WORDS : 0;
}
