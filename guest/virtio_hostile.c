/*
 * virtio_hostile: a hostile virtio driver against the device in slot N
 * ("slot=N" on the command line: 0 virtio-rng, 1 -blk, 2 -vsock, 3 -net),
 * then a well-behaved one that the device must still serve.
 *   1. Random register writes of every width all over the slot and an absent
 *      slot (the seed from the command line, "seed=N").
 *   2. Bad queue setups: a size that is not a power of two, or too large.
 *   3. Garbage chains on each of the device's queues, one per notify: a
 *      descriptor that loops to itself, a head index beyond the queue,
 *      addresses beyond RAM, in the MMIO hole (the control device's page) and
 *      wrapping, a length of 4 GiB, a device-readable descriptor after a
 *      writable one, the avail index run far ahead, and the ring itself placed
 *      beyond RAM. After each, the driver resets the device if it asked for
 *      it (DEVICE_NEEDS_RESET) and goes on.
 *   4. A reset, a proper setup, one proper request: rng fills 64 bytes, blk
 *      reads sector 0, vsock and net take a packet or frame the driver sends.
 * REPORT: [0] MagicValue, [1] Version, [2] DeviceID of the slot,
 *         [3] MagicValue of slot 5 (no device there: all ones), [4] the good
 *         request's used length, [5] what it got (rng: nonzero bytes of 64;
 *         blk: the status byte << 32 | the sector's first 4 bytes; else 0),
 *         [6] the control device's MAGIC at the end (the device wrote nothing
 *         there), [7] garbage chains sent
 * exit:   0, 1 when a check failed (with a log line), 2 when the slot has no device
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
#define REG_CONFIG       0x100

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
static uint8_t buffer[1024] __attribute__((aligned(64)));
enum { ID_NET = 1, ID_BLK = 2, ID_RNG = 4, ID_VSOCK = 19 };

static uint64_t rng_state;
static int failures;
static unsigned dev_slot;   /* the device under attack */

static uint32_t rd_slot(unsigned slot, unsigned reg)
{
	return *(volatile uint32_t *)(uintptr_t)(SLOT(slot) + reg);
}

static uint32_t rd(unsigned reg)
{
	return rd_slot(dev_slot, reg);
}

static void wr(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(SLOT(dev_slot) + reg) = v;
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

	if (slot == dev_slot && off < REG_QUEUE_NOTIFY + 4 && off + size > REG_QUEUE_NOTIFY)
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
	wr(lo_reg, (uint32_t)addr);
	wr(lo_reg + 4, (uint32_t)(addr >> 32));
}

static void clear_rings(void)
{
	for (unsigned i = 0; i < sizeof(avail) / 2; i++)
		((volatile uint16_t *)&avail)[i] = 0;
	for (unsigned i = 0; i < sizeof(used) / 2; i++)
		((volatile uint16_t *)&used)[i] = 0;
}

/* Reset, negotiate VERSION_1, and set queue q up over our rings: true when the device took it. */
static bool setup(unsigned q)
{
	wr(REG_STATUS, 0);
	clear_rings();
	wr(REG_STATUS, ST_ACK | ST_DRIVER);
	wr(REG_DRV_FEAT_SEL, 0);
	wr(REG_DRV_FEAT, 0);
	wr(REG_DRV_FEAT_SEL, 1);
	wr(REG_DRV_FEAT, 1); /* VIRTIO_F_VERSION_1, bit 32 */
	wr(REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(rd(REG_STATUS) & ST_FEATURES_OK))
		return false;
	wr(REG_QUEUE_SEL, q);
	if (rd(REG_QUEUE_MAX) < QSIZE)
		return false;
	wr(REG_QUEUE_NUM, QSIZE);
	set_addr(REG_DESC_LO, (uintptr_t)descs);
	set_addr(REG_AVAIL_LO, (uintptr_t)&avail);
	set_addr(REG_USED_LO, (uintptr_t)&used);
	wr(REG_QUEUE_READY, 1);
	wr(REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	return rd(REG_QUEUE_READY) == 1;
}

/* Offer head on q (one more avail entry), notify, and take down any interrupt. */
static void offer(unsigned q, uint16_t head)
{
	avail.ring[avail.idx % QSIZE] = head;
	asm volatile("" ::: "memory");
	avail.idx++;
	asm volatile("mfence" ::: "memory");
	wr(REG_QUEUE_NOTIFY, q);
	wr(REG_INT_ACK, rd(REG_INT_STATUS));
}

/* The device may give up on a broken driver (DEVICE_NEEDS_RESET): then start over. */
static void recover(unsigned q)
{
	if (rd(REG_STATUS) & ST_NEEDS_RESET)
		check(setup(q), "setup after DEVICE_NEEDS_RESET");
}

static void one_desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	descs[0] = (struct desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

/* Queues the device has: those whose QueueNumMax is not 0. */
static unsigned queues(void)
{
	unsigned n = 0;

	wr(REG_STATUS, 0);
	while (n < 8) {
		wr(REG_QUEUE_SEL, n);
		if (!rd(REG_QUEUE_MAX))
			break;
		n++;
	}
	return n;
}

static unsigned garbage_on(unsigned q)
{
	static const uint64_t bad_addrs[] = {
		0xfffffff000000000ULL, /* far beyond RAM */
		0xd0000000ULL,         /* the control device's page */
		0xfffffffffffffff0ULL, /* wraps around */
	};
	unsigned sent = 0;

	check(setup(q), "first setup");
	one_desc((uintptr_t)buffer, 16, F_WRITE | F_NEXT, 0); /* loops to itself */
	offer(q, 0), recover(q), sent++;
	offer(q, 200), recover(q), sent++;                    /* head beyond the queue */
	for (unsigned i = 0; i < 3; i++) {
		one_desc(bad_addrs[i], 64, F_WRITE, 0);
		offer(q, 0), recover(q), sent++;
		one_desc(bad_addrs[i], 64, 0, 0);             /* readable, for the tx queues */
		offer(q, 0), recover(q), sent++;
	}
	one_desc((uintptr_t)buffer, 0xffffffffu, F_WRITE, 0); /* 4 GiB */
	offer(q, 0), recover(q), sent++;
	one_desc((uintptr_t)buffer, 16, F_WRITE | F_NEXT, 1); /* readable after writable */
	descs[1] = (struct desc){ .addr = (uintptr_t)buffer + 16, .len = 16, .next = 0 };
	offer(q, 0), recover(q), sent++;
	avail.idx += 1000;                                     /* far ahead of the device */
	offer(q, 0), recover(q), sent++;
	check(setup(q), "setup before the ring beyond RAM");
	wr(REG_QUEUE_READY, 0);
	set_addr(REG_DESC_LO, 0xfffffff000000000ULL);
	wr(REG_QUEUE_READY, 1);
	offer(q, 0), recover(q), sent++;
	return sent;
}

static unsigned garbage_chains(unsigned nq)
{
	unsigned sent = 0;

	for (unsigned q = 0; q < nq; q++)
		sent += garbage_on(q);
	return sent;
}

static void bad_queue_setups(void)
{
	wr(REG_STATUS, 0);
	wr(REG_STATUS, ST_ACK | ST_DRIVER);
	wr(REG_QUEUE_SEL, 0);
	wr(REG_QUEUE_NUM, 7);
	wr(REG_QUEUE_READY, 1);
	wr(REG_QUEUE_NUM, 0x10000);
	wr(REG_QUEUE_SEL, 77);
	wr(REG_QUEUE_READY, 1);
}

static void zero(void *p, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		((volatile uint8_t *)p)[i] = 0;
}

/*
 * The proper request each device serves: its queue, with descs[] and buffer
 * filled in. rng: 64 writable bytes. blk: IN of sector 0 (header, 512 bytes,
 * status). vsock: a REQUEST from the guest to the host's port 9999 (a
 * 44-byte header). net: a broadcast frame after a 12-byte header.
 */
static unsigned good_chain(uint32_t id)
{
	zero(buffer, sizeof(buffer));
	switch (id) {
	case ID_BLK:
		descs[0] = (struct desc){ (uintptr_t)buffer, 16, F_NEXT, 1 };
		descs[1] = (struct desc){ (uintptr_t)buffer + 16, 512, F_WRITE | F_NEXT, 2 };
		descs[2] = (struct desc){ (uintptr_t)buffer + 528, 1, F_WRITE, 0 };
		buffer[528] = 0xff;
		return 0;
	case ID_VSOCK:
		*(uint64_t *)buffer = rd(REG_CONFIG);        /* src_cid */
		*(uint64_t *)(buffer + 8) = 2;               /* dst_cid: the host */
		*(uint32_t *)(buffer + 16) = 5555;           /* src_port */
		*(uint32_t *)(buffer + 20) = 9999;           /* dst_port */
		*(uint16_t *)(buffer + 28) = 1;              /* type: stream */
		*(uint16_t *)(buffer + 30) = 1;              /* op: REQUEST */
		*(uint32_t *)(buffer + 36) = 65536;          /* buf_alloc */
		one_desc((uintptr_t)buffer, 44, 0, 0);
		return 1;
	case ID_NET:
		for (unsigned i = 12; i < 18; i++)
			buffer[i] = 0xff;                     /* to everyone */
		buffer[18 + 6] = 0x88, buffer[18 + 7] = 0xb5; /* from 00:..: a local type */
		one_desc((uintptr_t)buffer, 12 + 60, 0, 0);
		return 1;
	default:
		one_desc((uintptr_t)buffer, 64, F_WRITE, 0);
		return 0;
	}
}

/* What the request got, for the report. */
static uint64_t good_result(uint32_t id)
{
	unsigned nonzero = 0;

	if (id == ID_BLK)
		return (uint64_t)buffer[528] << 32 | *(uint32_t *)(buffer + 16);
	if (id != ID_RNG)
		return 0;
	for (unsigned i = 0; i < 64; i++)
		nonzero += buffer[i] != 0;
	return nonzero;
}

/* A proper request after all that: it must come back. */
static void good_request(uint32_t id)
{
	uint64_t start = rt_rdtsc();
	unsigned q = good_chain(id);
	uint16_t seen;

	check(setup(q), "final setup");
	seen = used.idx;
	offer(q, 0);
	while (*(volatile uint16_t *)&used.idx == seen && rt_rdtsc() - start < 20000000000ULL)
		rt_pause();
	check(used.idx != seen, "the good request came back");
	rt_report(used.idx != seen ? used.ring[seen % QSIZE].len : 0);
	rt_report(good_result(id));
}

int main(void)
{
	unsigned sent, nq;
	uint32_t id;

	rng_state = rt_arg_u64("seed", 1) | 1;
	dev_slot = (unsigned)rt_arg_u64("slot", 0) % 5;
	id = rd(REG_DEVICE_ID);
	rt_report(rd(REG_MAGIC));
	rt_report(rd(REG_VERSION));
	rt_report(id);
	rt_report(rd_slot(5, REG_MAGIC));
	if (!id) {
		rt_printf("virtio_hostile: no device in slot %u\n", dev_slot);
		return 2;
	}
	nq = queues();
	for (unsigned i = 0; i < 4000; i++)
		random_write(i % 2 ? dev_slot : 5);
	bad_queue_setups();
	sent = garbage_chains(nq);
	good_request(id);
	rt_report(rt_ctl_read(VMFORK_CTL_MAGIC));
	rt_report(sent);
	rt_printf("virtio_hostile: slot %u (device %u, %u queues) survived %u garbage chains\n",
		  dev_slot, id, nq, sent);
	return failures ? 1 : 0;
}
