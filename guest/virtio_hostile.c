/*
 * virtio_hostile: a hostile virtio driver against virtio-rng (run with --rng,
 * slot 0), then a well-behaved one that must still get random bytes.
 *   1. Random register writes of every width all over the slot and an absent
 *      slot (the seed from the command line, "seed=N").
 *   2. Bad queue setups: a size that is not a power of two, or too large.
 *   3. Garbage chains, one per notify: a descriptor that loops to itself, a
 *      head index beyond the queue, addresses beyond RAM, in the MMIO hole (the
 *      control device's page) and wrapping, a length of 4 GiB, a device-readable
 *      descriptor after a writable one, the avail index run far ahead, and the
 *      ring itself placed beyond RAM. After each, the driver resets the device
 *      if it asked for it (DEVICE_NEEDS_RESET) and goes on.
 *   4. A reset, a proper setup, one 64-byte request: it must come back full.
 * REPORT: [0] MagicValue, [1] Version, [2] DeviceID of slot 0 (4),
 *         [3] MagicValue of slot 5 (no device there: all ones), [4] bytes the good request got (64),
 *         [5] nonzero bytes among them, [6] the control device's MAGIC at the
 *         end (the device wrote nothing there), [7] garbage chains sent
 * exit:   0, 1 when a check failed (with a log line), 2 when slot 0 has no device
 */
#include "rt.h"

#define SLOT(i)          (0xd0010000ULL + (i) * 0x1000ULL)
#define REG_MAGIC        0x000
#define REG_VERSION      0x004
#define REG_DEVICE_ID    0x008
#define REG_DEV_FEAT     0x010
#define REG_DEV_FEAT_SEL 0x014
#define REG_DRV_FEAT     0x020
#define REG_DRV_FEAT_SEL 0x024
#define REG_QUEUE_SEL    0x030
#define REG_QUEUE_MAX    0x034
#define REG_QUEUE_NUM    0x038
#define REG_QUEUE_READY  0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INT_STATUS   0x060
#define REG_INT_ACK      0x064
#define REG_STATUS       0x070
#define REG_DESC_LO      0x080
#define REG_DESC_HI      0x084
#define REG_AVAIL_LO     0x090
#define REG_AVAIL_HI     0x094
#define REG_USED_LO      0x0a0
#define REG_USED_HI      0x0a4

#define ST_ACK         1
#define ST_DRIVER      2
#define ST_DRIVER_OK   4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 0x40

#define F_NEXT  1
#define F_WRITE 2

#define QSIZE 8

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct avail {
	uint16_t flags, idx, ring[QSIZE], used_event;
};

struct used_elem {
	uint32_t id, len;
};

struct used {
	uint16_t flags, idx;
	struct used_elem ring[QSIZE];
	uint16_t avail_event;
};

static struct desc descs[QSIZE] __attribute__((aligned(16)));
static struct avail avail __attribute__((aligned(2)));
static struct used used __attribute__((aligned(4)));
static uint8_t buffer[64] __attribute__((aligned(64)));
static uint64_t rng_state;
static int failures;

static uint32_t rd(unsigned slot, unsigned reg)
{
	return *(volatile uint32_t *)(uintptr_t)(SLOT(slot) + reg);
}

static void wr(unsigned slot, unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(SLOT(slot) + reg) = v;
}

static uint64_t next_random(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void check(bool ok, const char *what)
{
	if (!ok) {
		rt_printf("virtio_hostile: FAILED: %s\n", what);
		failures++;
	}
}

/*
 * One access of exactly size bytes at a random offset of the slot. Not
 * QueueNotify of the live device: a notify over a ring that random writes
 * happened to place in our own RAM would have the device fill our code with
 * random bytes, as the driver asked (a guest may hurt itself, not the VMM).
 */
static void random_write(unsigned slot)
{
	uint64_t r = next_random(), v = next_random();
	unsigned size = 1u << (r & 3), off = (unsigned)(r >> 8) & 0xfff & ~(size - 1);
	uintptr_t a = (uintptr_t)(SLOT(slot) + off);

	if (slot == 0 && off < REG_QUEUE_NOTIFY + 4 && off + size > REG_QUEUE_NOTIFY)
		return;

	switch (size) {
	case 1: *(volatile uint8_t *)a = (uint8_t)v; break;
	case 2: *(volatile uint16_t *)a = (uint16_t)v; break;
	case 4: *(volatile uint32_t *)a = (uint32_t)v; break;
	default: *(volatile uint64_t *)a = v; break;
	}
}

static void set_addr(unsigned lo_reg, uint64_t addr)
{
	wr(0, lo_reg, (uint32_t)addr);
	wr(0, lo_reg + 4, (uint32_t)(addr >> 32));
}

/* Reset, negotiate VERSION_1, and set queue 0 up over our rings: true when the device took it. */
static bool setup(void)
{
	wr(0, REG_STATUS, 0);
	for (unsigned i = 0; i < sizeof(avail) / 2; i++)
		((volatile uint16_t *)&avail)[i] = 0;
	for (unsigned i = 0; i < sizeof(used) / 2; i++)
		((volatile uint16_t *)&used)[i] = 0;
	wr(0, REG_STATUS, ST_ACK | ST_DRIVER);
	wr(0, REG_DRV_FEAT_SEL, 0);
	wr(0, REG_DRV_FEAT, 0);
	wr(0, REG_DRV_FEAT_SEL, 1);
	wr(0, REG_DRV_FEAT, 1); /* VIRTIO_F_VERSION_1, bit 32 */
	wr(0, REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(rd(0, REG_STATUS) & ST_FEATURES_OK))
		return false;
	wr(0, REG_QUEUE_SEL, 0);
	if (rd(0, REG_QUEUE_MAX) < QSIZE)
		return false;
	wr(0, REG_QUEUE_NUM, QSIZE);
	set_addr(REG_DESC_LO, (uintptr_t)descs);
	set_addr(REG_AVAIL_LO, (uintptr_t)&avail);
	set_addr(REG_USED_LO, (uintptr_t)&used);
	wr(0, REG_QUEUE_READY, 1);
	wr(0, REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	return rd(0, REG_QUEUE_READY) == 1;
}

/* Offer head (one more avail entry), notify, and take down any interrupt. */
static void offer(uint16_t head)
{
	avail.ring[avail.idx % QSIZE] = head;
	asm volatile("" ::: "memory");
	avail.idx++;
	asm volatile("mfence" ::: "memory");
	wr(0, REG_QUEUE_NOTIFY, 0);
	wr(0, REG_INT_ACK, rd(0, REG_INT_STATUS));
}

/* The device may give up on a broken driver (DEVICE_NEEDS_RESET): then start over. */
static void recover(void)
{
	if (rd(0, REG_STATUS) & ST_NEEDS_RESET)
		check(setup(), "setup after DEVICE_NEEDS_RESET");
}

static void one_desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	descs[0] = (struct desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static unsigned garbage_chains(void)
{
	static const uint64_t bad_addrs[] = {
		0xfffffff000000000ULL, /* far beyond RAM */
		0xd0000000ULL,         /* the control device's page */
		0xfffffffffffffff0ULL, /* wraps around */
	};
	unsigned sent = 0;

	check(setup(), "first setup");
	one_desc((uintptr_t)buffer, 16, F_WRITE | F_NEXT, 0); /* loops to itself */
	offer(0), recover(), sent++;
	offer(200), recover(), sent++;                        /* head beyond the queue */
	for (unsigned i = 0; i < 3; i++) {
		one_desc(bad_addrs[i], 64, F_WRITE, 0);
		offer(0), recover(), sent++;
	}
	one_desc((uintptr_t)buffer, 0xffffffffu, F_WRITE, 0); /* 4 GiB */
	offer(0), recover(), sent++;
	one_desc((uintptr_t)buffer, 16, F_WRITE | F_NEXT, 1); /* readable after writable */
	descs[1] = (struct desc){ .addr = (uintptr_t)buffer + 16, .len = 16, .next = 0 };
	offer(0), recover(), sent++;
	avail.idx += 1000;                                     /* far ahead of the device */
	offer(0), recover(), sent++;
	check(setup(), "setup before the ring beyond RAM");
	wr(0, REG_QUEUE_READY, 0);
	set_addr(REG_DESC_LO, 0xfffffff000000000ULL);
	wr(0, REG_QUEUE_READY, 1);
	offer(0), recover(), sent++;
	return sent;
}

static void bad_queue_setups(void)
{
	wr(0, REG_STATUS, 0);
	wr(0, REG_STATUS, ST_ACK | ST_DRIVER);
	wr(0, REG_QUEUE_SEL, 0);
	wr(0, REG_QUEUE_NUM, 7);
	wr(0, REG_QUEUE_READY, 1);
	wr(0, REG_QUEUE_NUM, 0x10000);
	wr(0, REG_QUEUE_SEL, 77);
	wr(0, REG_QUEUE_READY, 1);
}

/* A proper request after all that: 64 bytes that must come back filled. */
static void good_request(void)
{
	uint16_t seen;
	unsigned nonzero = 0;
	uint64_t start = rt_rdtsc();

	check(setup(), "final setup");
	one_desc((uintptr_t)buffer, sizeof(buffer), F_WRITE, 0);
	for (unsigned i = 0; i < sizeof(buffer); i++)
		buffer[i] = 0;
	seen = used.idx;
	offer(0);
	while (*(volatile uint16_t *)&used.idx == seen && rt_rdtsc() - start < 20000000000ULL)
		rt_pause();
	check(used.idx != seen, "the good request came back");
	for (unsigned i = 0; i < sizeof(buffer); i++)
		nonzero += buffer[i] != 0;
	rt_report(used.idx != seen ? used.ring[seen % QSIZE].len : 0);
	rt_report(nonzero);
}

int main(void)
{
	unsigned sent;

	rng_state = rt_arg_u64("seed", 1) | 1;
	rt_report(rd(0, REG_MAGIC));
	rt_report(rd(0, REG_VERSION));
	rt_report(rd(0, REG_DEVICE_ID));
	rt_report(rd(5, REG_MAGIC));
	if (rd(0, REG_DEVICE_ID) != 4) {
		rt_printf("virtio_hostile: no virtio-rng in slot 0\n");
		return 2;
	}
	for (unsigned i = 0; i < 4000; i++)
		random_write(i % 2 ? 0 : 5);
	bad_queue_setups();
	sent = garbage_chains();
	good_request();
	rt_report(rt_ctl_read(VMFORK_CTL_MAGIC));
	rt_report(sent);
	rt_printf("virtio_hostile: survived, %u garbage chains\n", sent);
	return failures ? 1 : 0;
}
