/*
 * The split virtqueue against a hostile driver (devices/virtqueue.c) and the
 * virtio-mmio transport's registers with virtio-rng behind them
 * (devices/virtio_mmio.c), on guest RAM made without KVM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_rng.h"
#include "devices/virtqueue.h"

#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define BUF   0x20000ULL
#define QSIZE 8

static struct guest_mem mem;
static struct virtqueue vq;
static struct vq_chain chain;

static void setup(void)
{
	cr_assert_eq(guest_mem_create(&mem, 16 * MiB, NULL), 0);
	memset(&vq, 0, sizeof(vq));
	vq.mem = &mem;
	vq.st = (struct vq_state){ .desc = DESC, .avail = AVAIL, .used = USED, .size = QSIZE, .ready = 1 };
}

static void teardown(void)
{
	guest_mem_destroy(&mem);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d = { addr, len, flags, next };

	cr_assert_eq(guest_write(&mem, DESC + 16ULL * i, &d, sizeof(d)), 0);
}

/* The driver offers head: the ring entry, then the index. */
static void offer(uint16_t head)
{
	uint16_t idx;

	guest_read(&mem, AVAIL + 2, &idx, 2);
	guest_write(&mem, AVAIL + 4 + 2ULL * (idx % QSIZE), &head, 2);
	idx++;
	guest_write(&mem, AVAIL + 2, &idx, 2);
}

static uint32_t used_len(unsigned i)
{
	uint32_t e[2];

	guest_read(&mem, USED + 4 + 8ULL * i, e, sizeof(e));
	return e[1];
}

TestSuite(virtqueue, .init = setup, .fini = teardown);

Test(virtqueue, good_chain_is_taken_whole)
{
	uint8_t out[24];

	desc(0, BUF, 16, VIRTQ_DESC_F_NEXT, 3);
	desc(3, BUF + 0x100, 8, VIRTQ_DESC_F_NEXT, 5);
	desc(5, BUF + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
	guest_write(&mem, BUF, "0123456789abcdef", 16);
	guest_write(&mem, BUF + 0x100, "ghijklmn", 8);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_expect_eq(chain.nseg, 3);
	cr_expect_eq(chain.readable, 24);
	cr_expect_eq(chain.writable, 64);
	cr_expect_eq(vq_read(&vq, &chain, 0, out, sizeof(out)), 24);
	cr_expect_arr_eq(out, "0123456789abcdefghijklmn", 24, "gathered across descriptors");
	cr_expect_eq(vq_write(&vq, &chain, 60, "wxyz!", 5), 4, "bounded by the writable part");
	cr_expect_eq(vq_push(&vq, chain.head, 4), 0);
	cr_expect_eq(used_len(0), 4);
	cr_expect_eq(vq_pop(&vq, &chain), 0, "nothing more offered");
}

static void expect_bad(const char *what)
{
	uint64_t bad = vq.stats.bad_chains;

	cr_expect_eq(vq_pop(&vq, &chain), -EBADMSG, "%s", what);
	cr_expect_eq(vq.stats.bad_chains, bad + 1, "%s: not counted", what);
}

Test(virtqueue, bad_chains_are_returned_empty_and_counted)
{
	desc(0, BUF, 16, VIRTQ_DESC_F_NEXT, 0); /* loops to itself */
	offer(0);
	expect_bad("a loop");
	cr_expect_eq(used_len(0), 0);
	desc(1, BUF, 16, VIRTQ_DESC_F_NEXT, 9); /* next beyond the queue */
	offer(1);
	expect_bad("next beyond the queue");
	desc(2, 0xfffffff000000000ULL, 16, 0, 0);
	offer(2);
	expect_bad("beyond RAM");
	desc(2, 0xfffffffffffffff0ULL, 0x20, 0, 0);
	offer(2);
	expect_bad("wrapping");
	desc(2, LAYOUT_MMIO_HOLE, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(2);
	expect_bad("in the MMIO hole");
	desc(2, BUF, 0, 0, 0);
	offer(2);
	expect_bad("zero length");
	desc(2, BUF, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	offer(2);
	expect_bad("4 GiB, more than RAM");
	desc(2, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	desc(3, BUF, 16, 0, 0);
	offer(2);
	expect_bad("readable after writable");
	desc(2, BUF, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(2);
	expect_bad("indirect, not offered");
	offer(200);
	expect_bad("head beyond the queue");
	cr_expect_eq(vq.stats.chains, 0);
	desc(4, BUF, 16, 0, 0);
	offer(4);
	cr_expect_eq(vq_pop(&vq, &chain), 1, "a good chain after all that");
}

Test(virtqueue, runaway_avail_index_breaks_the_ring)
{
	uint16_t idx = QSIZE + 1;

	guest_write(&mem, AVAIL + 2, &idx, 2);
	cr_expect_eq(vq_pop(&vq, &chain), -EIO);
	cr_expect_eq(vq.stats.broken, 1);
	cr_expect_eq(vq_pop(&vq, &chain), -EIO, "stays broken until a reset");
}

Test(virtqueue, rings_beyond_ram_break_the_ring)
{
	vq.st.avail = 0xfffffff000000000ULL;
	cr_expect_eq(vq_pop(&vq, &chain), -EIO);
}

Test(virtqueue, states_are_checked)
{
	struct vq_state st = { .size = 6 };

	cr_expect_eq(vq_check_state(&st), -EINVAL, "not a power of two");
	st.size = 512;
	cr_expect_eq(vq_check_state(&st), -EINVAL, "too large");
	st = (struct vq_state){ .ready = 1 };
	cr_expect_eq(vq_check_state(&st), -EINVAL, "ready without a size");
	st.size = 8;
	cr_expect_eq(vq_check_state(&st), 0);
}

/* The transport with virtio-rng behind it, through the bus as a vCPU reaches it. */
static struct bus bus;
static void *rng;

static uint32_t rd(uint64_t reg)
{
	uint32_t v = 0;

	cr_assert(bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + reg, (uint8_t *)&v, 4, false));
	return v;
}

static void wr(uint64_t reg, uint32_t v)
{
	cr_assert(bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + reg, (uint8_t *)&v, 4, true));
}

static unsigned irqs;

static void count_irq(void *opaque, unsigned gsi, int level)
{
	irqs += level && gsi == GSI_VIRTIO_BASE;
}

static void make_rng(void)
{
	struct device_host host = { .set_irq = count_irq, .mem = &mem };

	bus_init(&bus);
	cr_assert_eq(virtio_rng_device.create(&rng, &bus, &host), 0);
}

/* A driver's setup of queue 0 over the test's rings. */
static void driver_setup(void)
{
	wr(0x070, 0);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1); /* VERSION_1 */
	wr(0x070, 3 | 8);
	cr_assert(rd(0x070) & 8, "FEATURES_OK refused");
	wr(0x030, 0);
	wr(0x038, QSIZE);
	wr(0x080, (uint32_t)DESC);
	wr(0x090, (uint32_t)AVAIL);
	wr(0x0a0, (uint32_t)USED);
	wr(0x044, 1);
	wr(0x070, 3 | 8 | 4);
}

Test(virtqueue, transport_serves_random_bytes)
{
	uint8_t out[64] = { 0 };
	unsigned nonzero = 0;

	make_rng();
	cr_expect_eq(rd(0x000), 0x74726976);
	cr_expect_eq(rd(0x004), 2);
	cr_expect_eq(rd(0x008), 0, "absent until configured");
	cr_assert_eq(virtio_rng_device.configure(rng, ""), 0);
	cr_expect_eq(rd(0x008), 4);
	driver_setup();
	desc(0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(0x050, 0);
	cr_expect_eq(used_len(0), 64);
	guest_read(&mem, BUF, out, sizeof(out));
	for (unsigned i = 0; i < sizeof(out); i++)
		nonzero += out[i] != 0;
	cr_expect_gt(nonzero, 32);
	cr_expect_eq(irqs, 1, "one interrupt edge");
	cr_expect_eq(rd(0x060), VIRTIO_INT_VRING);
	wr(0x064, VIRTIO_INT_VRING);
	cr_expect_eq(rd(0x060), 0);
	virtio_rng_device.destroy(rng);
}

Test(virtqueue, transport_refuses_what_a_driver_must_not_do)
{
	struct virtio_mmio_stats s;
	struct vq_stats q;
	uint8_t b = 0xff;

	make_rng();
	cr_assert_eq(virtio_rng_device.configure(rng, ""), 0);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 0); /* no VERSION_1 */
	wr(0x070, 3 | 8);
	cr_expect_eq(rd(0x070) & 8, 0, "FEATURES_OK without VERSION_1");
	wr(0x070, 0);
	driver_setup();
	wr(0x038, 4);
	cr_expect_eq(rd(0x038), QSIZE, "QueueNum of a ready queue changed");
	wr(0x044, 0);
	wr(0x038, 7);
	cr_expect_eq(rd(0x038), QSIZE, "a size that is not a power of two");
	wr(0x038, 1024);
	cr_expect_eq(rd(0x038), QSIZE, "a size above QueueNumMax");
	bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + 0x070, &b, 1, true);
	cr_expect_eq(rd(0x070), 3 | 8 | 4, "a 1-byte register write took effect");
	virtio_mmio_stats(*(struct virtio_mmio **)rng, &s, &q);
	cr_expect_eq(s.bad_accesses, 4, "refused accesses counted: %llu", (unsigned long long)s.bad_accesses);
	virtio_rng_device.destroy(rng);
}

Test(virtqueue, state_continues_in_another_instance)
{
	struct virtio_rng_state st;
	void *second;
	struct device_host host = { .set_irq = count_irq, .mem = &mem };
	struct bus bus2;

	make_rng();
	cr_assert_eq(virtio_rng_device.configure(rng, ""), 0);
	driver_setup();
	desc(0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(0x050, 0);
	virtio_rng_device.save(rng, &st);
	cr_expect_eq(st.transport.queues[0].used_idx, 1);
	cr_expect_eq(virtio_rng_device.check(&st), 0);
	bus_init(&bus2);
	cr_assert_eq(virtio_rng_device.create(&second, &bus2, &host), 0);
	cr_assert_eq(virtio_rng_device.configure(second, ""), 0);
	cr_assert_eq(virtio_rng_device.restore(second, &st), 0);
	virtio_rng_device.destroy(rng);
	rng = second;
	bus = bus2;
	offer(0);
	wr(0x050, 0);
	cr_expect_eq(used_len(1), 16, "the second instance went on at the used ring's next entry");
	st.transport.queues[0].size = 6;
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL);
	virtio_rng_device.destroy(rng);
}
