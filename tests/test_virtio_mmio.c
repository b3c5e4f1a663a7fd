/*
 * The virtio-mmio transport (devices/virtio_mmio.c) with virtio-rng behind
 * it, through the bus as a vCPU reaches it, on guest RAM made without KVM:
 * what a driver reads and writes, what it must not write, and a state
 * carried into a second instance mid-queue.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/aml.h"
#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_rng.h"
#include "devices/virtqueue.h"

/* Registers (virtio 1.x, 4.2.2). */
enum {
	MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, VENDOR_ID = 0x00c,
	DEV_FEAT = 0x010, DEV_FEAT_SEL = 0x014, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024,
	QUEUE_SEL = 0x030, QUEUE_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044,
	QUEUE_NOTIFY = 0x050, INT_STATUS = 0x060, INT_ACK = 0x064, STATUS = 0x070,
	DESC_LO = 0x080, DESC_HI = 0x084, AVAIL_LO = 0x090, AVAIL_HI = 0x094,
	USED_LO = 0x0a0, USED_HI = 0x0a4, CONFIG_GEN = 0x0fc, CONFIG = 0x100,
};

#define S_ACK_DRIVER (VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER)
#define S_FEATURES   (S_ACK_DRIVER | VIRTIO_STATUS_FEATURES_OK)
#define S_RUNNING    (S_FEATURES | VIRTIO_STATUS_DRIVER_OK)

#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define BUF   0x20000ULL
#define QSIZE 8

static struct guest_mem mem;
static struct bus bus;
static void *rng;
static unsigned irqs;

static void count_irq(void *opaque, unsigned gsi, int level)
{
	irqs += level && gsi == GSI_VIRTIO_BASE + VIRTIO_RNG_SLOT;
}

static const struct device_host host = { .set_irq = count_irq, .mem = &mem };

static void setup(void)
{
	cr_assert_eq(guest_mem_create(&mem, 16 * MiB, NULL), 0);
	bus_init(&bus);
	irqs = 0;
	cr_assert_eq(virtio_rng_device.create(&rng, &bus, &host), 0);
}

static void teardown(void)
{
	virtio_rng_device.destroy(rng);
	guest_mem_destroy(&mem);
}

TestSuite(virtio_mmio, .init = setup, .fini = teardown);

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

static struct virtio_mmio *transport(void)
{
	/* virtio-rng's object starts with its transport (devices/virtio_rng.c). */
	return *(struct virtio_mmio **)rng;
}

static uint64_t bad_accesses(void)
{
	struct virtio_mmio_stats s;
	struct vq_stats q;

	virtio_mmio_stats(transport(), &s, &q);
	return s.bad_accesses;
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

static uint16_t used_idx(void)
{
	uint16_t idx;

	guest_read(&mem, USED + 2, &idx, 2);
	return idx;
}

/* Features (VERSION_1) accepted, then queue 0 over the test's rings; DRIVER_OK if run. */
static void driver_setup(bool run)
{
	wr(STATUS, 0);
	wr(STATUS, S_ACK_DRIVER);
	wr(DRV_FEAT_SEL, 1);
	wr(DRV_FEAT, 1); /* bit 32: VERSION_1 */
	wr(STATUS, S_FEATURES);
	cr_assert_eq(rd(STATUS), S_FEATURES, "FEATURES_OK refused");
	wr(QUEUE_SEL, 0);
	wr(QUEUE_NUM, QSIZE);
	wr(DESC_LO, (uint32_t)DESC);
	wr(AVAIL_LO, (uint32_t)AVAIL);
	wr(USED_LO, (uint32_t)USED);
	wr(QUEUE_READY, 1);
	if (run)
		wr(STATUS, S_RUNNING);
}

static void turn_on(void)
{
	cr_assert_eq(virtio_rng_device.configure(rng, ""), 0);
}

Test(virtio_mmio, absent_until_configured)
{
	uint8_t buf[256];
	struct aml a;

	cr_expect_eq(rd(MAGIC), 0x74726976, "\"virt\"");
	cr_expect_eq(rd(VERSION), 2, "the modern layout");
	cr_expect_eq(rd(DEVICE_ID), 0, "a driver must skip an absent slot");
	wr(STATUS, S_ACK_DRIVER);
	cr_expect_eq(rd(STATUS), 0, "an absent device took a status");
	aml_init(&a, buf, sizeof(buf));
	cr_expect_eq(virtio_mmio_describe(transport(), &a), 0);
	cr_expect_eq(aml_finish(&a), 0, "an absent device in the DSDT");
	turn_on();
	cr_expect_eq(rd(DEVICE_ID), 4, "virtio-rng");
	cr_expect_eq(rd(VENDOR_ID), 0x4b524f46);
	cr_expect_eq(bad_accesses(), 0);
}

Test(virtio_mmio, features_are_negotiated)
{
	turn_on();
	wr(DEV_FEAT_SEL, 0);
	cr_expect_eq(rd(DEV_FEAT), 0, "virtio-rng offers nothing in the low word");
	wr(DEV_FEAT_SEL, 1);
	cr_expect_eq(rd(DEV_FEAT), 1, "VERSION_1 offered");
	wr(DEV_FEAT_SEL, 2);
	cr_expect_eq(rd(DEV_FEAT), 0, "a word beyond the features");
	wr(STATUS, S_ACK_DRIVER);
	wr(STATUS, S_FEATURES);
	cr_expect_eq(rd(STATUS), S_ACK_DRIVER, "FEATURES_OK without VERSION_1 (a legacy driver)");
	wr(DRV_FEAT_SEL, 1);
	wr(DRV_FEAT, 1 | 2); /* VERSION_1 and bit 33, not offered */
	wr(STATUS, S_FEATURES);
	cr_expect_eq(rd(STATUS), S_ACK_DRIVER, "FEATURES_OK with a feature not offered");
	wr(DRV_FEAT, 1);
	wr(STATUS, S_FEATURES);
	cr_expect_eq(rd(STATUS), S_FEATURES);
	cr_expect_eq(virtio_mmio_driver_features(transport()), VIRTIO_F_VERSION_1);
	wr(STATUS, S_RUNNING);
	cr_expect_eq(rd(STATUS), S_RUNNING);
	cr_expect_eq(bad_accesses(), 0);
	wr(DRV_FEAT, 0);
	cr_expect_eq(bad_accesses(), 1, "features changed after FEATURES_OK");
	cr_expect_eq(virtio_mmio_driver_features(transport()), VIRTIO_F_VERSION_1);
}

Test(virtio_mmio, driver_ok_needs_features_ok)
{
	turn_on();
	wr(STATUS, S_ACK_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	cr_expect_eq(rd(STATUS), S_ACK_DRIVER);
	wr(STATUS, S_ACK_DRIVER | VIRTIO_STATUS_NEEDS_RESET);
	cr_expect_eq(rd(STATUS), S_ACK_DRIVER, "the driver set NEEDS_RESET");
}

Test(virtio_mmio, queue_is_set_up_and_read_back)
{
	turn_on();
	driver_setup(false);
	wr(QUEUE_SEL, 0);
	cr_expect_eq(rd(QUEUE_MAX), 64);
	cr_expect_eq(rd(QUEUE_NUM), QSIZE);
	cr_expect_eq(rd(QUEUE_READY), 1);
	cr_expect_eq(rd(DESC_LO), (uint32_t)DESC);
	cr_expect_eq(rd(AVAIL_LO), (uint32_t)AVAIL);
	cr_expect_eq(rd(USED_LO), (uint32_t)USED);
	wr(QUEUE_READY, 0);
	wr(USED_HI, 0x12);
	cr_expect_eq(rd(USED_HI), 0x12, "the high half of an address");
	cr_expect_eq(rd(USED_LO), (uint32_t)USED, "the low half kept");
	wr(QUEUE_SEL, 1);
	cr_expect_eq(rd(QUEUE_MAX), 0, "virtio-rng has one queue");
	wr(QUEUE_NUM, 8);
	wr(QUEUE_READY, 1);
	cr_expect_eq(rd(QUEUE_READY), 0, "a queue that does not exist made ready");
	cr_expect_eq(bad_accesses(), 2);
}

Test(virtio_mmio, notify_fills_a_buffer_with_random_bytes_and_interrupts)
{
	uint8_t out[64] = { 0 };
	unsigned nonzero = 0;

	turn_on();
	driver_setup(true);
	desc(0, BUF, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	cr_expect_eq(used_idx(), 1);
	cr_expect_eq(used_len(0), 64);
	guest_read(&mem, BUF, out, sizeof(out));
	for (unsigned i = 0; i < sizeof(out); i++)
		nonzero += out[i] != 0;
	cr_expect_gt(nonzero, 32, "64 random bytes with %u of them nonzero", nonzero);
	cr_expect_eq(irqs, 1, "one interrupt edge");
	cr_expect_eq(rd(INT_STATUS), VIRTIO_INT_VRING);
	wr(INT_ACK, VIRTIO_INT_VRING);
	cr_expect_eq(rd(INT_STATUS), 0);
	wr(QUEUE_NOTIFY, 0);
	cr_expect_eq(irqs, 1, "an interrupt for a notify that brought nothing");
	cr_expect_eq(rd(INT_STATUS), 0);
}

Test(virtio_mmio, buffers_offered_before_driver_ok_are_served_at_it)
{
	turn_on();
	driver_setup(false);
	desc(0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	cr_expect_eq(used_idx(), 0, "served before DRIVER_OK");
	wr(STATUS, S_RUNNING);
	cr_expect_eq(used_idx(), 1, "not served once the device runs");
	cr_expect_eq(used_len(0), 16);
}

Test(virtio_mmio, reset_forgets_the_queues)
{
	turn_on();
	driver_setup(true);
	desc(0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	wr(STATUS, 0);
	cr_expect_eq(rd(STATUS), 0);
	cr_expect_eq(rd(INT_STATUS), 0);
	cr_expect_eq(rd(QUEUE_READY), 0);
	cr_expect_eq(rd(QUEUE_NUM), 0);
	cr_expect_eq(rd(DESC_LO), 0);
	cr_expect_eq(virtio_mmio_driver_features(transport()), 0);
	/* Set up again over fresh rings: the device starts at index 0. */
	memset(mem.host + USED, 0, 4 + 8 * QSIZE);
	memset(mem.host + AVAIL, 0, 4 + 2 * QSIZE);
	driver_setup(true);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	cr_expect_eq(used_idx(), 1);
	cr_expect_eq(used_len(0), 16, "the first used entry after a reset");
}

/* Linux writes QueueReady 0 before it frees a queue's rings: new rings start at index 0. */
Test(virtio_mmio, queue_set_up_again_starts_at_index_zero)
{
	turn_on();
	driver_setup(true);
	desc(0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	cr_assert_eq(used_idx(), 2);
	wr(QUEUE_READY, 0);
	memset(mem.host + USED, 0, 4 + 8 * QSIZE);
	memset(mem.host + AVAIL, 0, 4 + 2 * QSIZE);
	wr(QUEUE_READY, 1);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	cr_expect_eq(used_idx(), 1, "the device went on from the old rings' indexes");
	cr_expect_eq(used_len(0), 16);
}

Test(virtio_mmio, broken_ring_needs_a_reset)
{
	uint16_t runaway = QSIZE + 1;

	turn_on();
	driver_setup(true);
	guest_write(&mem, AVAIL + 2, &runaway, 2);
	wr(QUEUE_NOTIFY, 0);
	cr_expect(rd(STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	cr_expect_eq(rd(INT_STATUS), VIRTIO_INT_CONFIG, "the driver told by a config interrupt");
	cr_expect_eq(rd(CONFIG_GEN), 1);
	cr_expect_eq(irqs, 1);
	wr(STATUS, S_RUNNING);
	cr_expect(rd(STATUS) & VIRTIO_STATUS_NEEDS_RESET, "cleared without a reset");
	wr(STATUS, 0);
	cr_expect_eq(rd(STATUS), 0);
}

Test(virtio_mmio, refused_writes_change_nothing_and_are_counted)
{
	uint8_t b = 0xff;
	uint32_t v = 0;

	turn_on();
	driver_setup(true);
	wr(QUEUE_NUM, 4);
	cr_expect_eq(rd(QUEUE_NUM), QSIZE, "QueueNum of a ready queue changed");
	wr(DESC_LO, 0x5000);
	cr_expect_eq(rd(DESC_LO), (uint32_t)DESC, "an address of a ready queue changed");
	wr(QUEUE_READY, 0);
	wr(QUEUE_NUM, 7);
	cr_expect_eq(rd(QUEUE_NUM), QSIZE, "a size that is not a power of two");
	wr(QUEUE_NUM, 128);
	cr_expect_eq(rd(QUEUE_NUM), QSIZE, "a size above QueueNumMax");
	wr(QUEUE_NUM, 0);
	cr_expect_eq(rd(QUEUE_NUM), QSIZE, "size 0");
	wr(QUEUE_READY, 2);
	cr_expect_eq(rd(QUEUE_READY), 0, "QueueReady 2");
	cr_expect_eq(bad_accesses(), 6);
	bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + STATUS, &b, 1, true);
	cr_expect_eq(rd(STATUS), S_RUNNING, "a 1-byte register write took effect");
	bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + STATUS + 2, (uint8_t *)&v, 4, true);
	wr(MAGIC, 0);
	cr_expect_eq(rd(MAGIC), 0x74726976);
	rd(0x0f0); /* no register */
	cr_expect_eq(bad_accesses(), 10);
	v = 0xffffffff;
	bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + CONFIG, (uint8_t *)&v, 4, false);
	cr_expect_eq(v, 0, "virtio-rng has no config space");
	bus_access(&bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + CONFIG, (uint8_t *)&v, 4, true);
	cr_expect_eq(bad_accesses(), 12);
}

/* Its Device() in the DSDT: name, _HID, _UID, and the window and edge interrupt in _CRS. */
Test(virtio_mmio, describes_itself_for_the_dsdt)
{
	static const uint8_t mem32[] = { 0x86, 9, 0, 1, 0x00, 0x00, 0x01, 0xd0, 0x00, 0x02, 0, 0 };
	static const uint8_t irq[] = { 0x89, 6, 0, 0x03, 1, GSI_VIRTIO_BASE, 0, 0, 0 };
	uint8_t buf[256];
	struct aml a;
	int n;

	turn_on();
	aml_init(&a, buf, sizeof(buf));
	cr_assert_eq(virtio_mmio_describe(transport(), &a), 0);
	n = aml_finish(&a);
	cr_assert_gt(n, 0, "aml error %d", n);
	cr_expect(memmem(buf, n, "VR00", 4), "no Device(VR00)");
	cr_expect(memmem(buf, n, "LNRO0005", 9), "no _HID LNRO0005 with its NUL");
	cr_expect(memmem(buf, n, mem32, sizeof(mem32)), "no Memory32Fixed(RW, 0xd0010000, 0x200)");
	cr_expect(memmem(buf, n, irq, sizeof(irq)), "no Interrupt(Consumer, Edge, High) {16}");
}

Test(virtio_mmio, states_a_save_cannot_make_are_refused)
{
	struct virtio_rng_state st;

	turn_on();
	driver_setup(true);
	virtio_rng_device.save(rng, &st);
	cr_assert_eq(virtio_rng_device.check(&st), 0);
	st.transport.queues[0].size = 6;
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL, "a size that is not a power of two");
	st.transport.queues[0].size = 128;
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL, "a size above QueueNumMax");
	st.transport.queues[0].size = QSIZE;
	st.transport.queues[1] = st.transport.queues[0];
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL, "a second queue on virtio-rng");
	memset(&st.transport.queues[1], 0, sizeof(st.transport.queues[1]));
	st.transport.status = S_ACK_DRIVER | VIRTIO_STATUS_DRIVER_OK;
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL, "DRIVER_OK without FEATURES_OK");
	st.transport.status = S_RUNNING;
	st.transport.driver_features |= 1;
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL, "a feature not offered");
	st.transport.driver_features = VIRTIO_F_VERSION_1;
	st.transport.interrupt_status = 4;
	cr_expect_eq(virtio_rng_device.check(&st), -EINVAL, "an interrupt bit that does not exist");
	st.transport.interrupt_status = VIRTIO_INT_VRING;
	st.transport.queues[0].desc = 0xfffffff000000000ULL;
	cr_expect_eq(virtio_rng_device.check(&st), 0, "rings beyond RAM are the driver's business");
}

/* A clone made mid-queue: one request served, two offered and not yet looked at. */
Test(virtio_mmio, state_continues_in_another_instance)
{
	struct virtio_rng_state st;
	struct bus bus2;
	void *second;

	turn_on();
	driver_setup(true);
	for (unsigned i = 0; i < 3; i++)
		desc(i, BUF + 0x100 * i, 16 << i, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(QUEUE_NOTIFY, 0);
	offer(1);
	offer(2);
	virtio_rng_device.save(rng, &st);
	cr_expect_eq(st.transport.queues[0].last_avail, 1);
	cr_expect_eq(st.transport.queues[0].used_idx, 1);
	cr_assert_eq(virtio_rng_device.check(&st), 0);
	bus_init(&bus2);
	cr_assert_eq(virtio_rng_device.create(&second, &bus2, &host), 0);
	cr_assert_eq(virtio_rng_device.configure(second, ""), 0);
	cr_assert_eq(virtio_rng_device.restore(second, &st), 0);
	virtio_rng_device.destroy(rng);
	rng = second;
	bus = bus2;
	cr_expect_eq(rd(STATUS), S_RUNNING);
	cr_expect_eq(rd(QUEUE_NUM), QSIZE);
	wr(QUEUE_NOTIFY, 0);
	cr_expect_eq(used_idx(), 3, "the second instance served what was left");
	cr_expect_eq(used_len(1), 32, "at the used ring's next entries");
	cr_expect_eq(used_len(2), 64);
}
