/*
 * virtio-blk (devices/virtio_blk.c) driven through its virtio-mmio registers
 * as a guest driver would, on guest RAM made without KVM: requests good and
 * bad, and the device hooks a fork, a reset and a snapshot use (hold, adopt,
 * export, import, attach) called as state/vm_snapshot.c and fork/ call them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/virtio_blk.h"

#define SLOT  (LAYOUT_VIRTIO_MMIO + VIRTIO_BLK_SLOT * VIRTIO_MMIO_SLOT_SIZE)
#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define HDR   0x20000ULL
#define DATA  0x30000ULL
#define STAT  0x2f000ULL
#define QSIZE 16
#define DISK_SIZE (256 * 1024 + 100) /* a tail of 100 bytes: no whole sector */

static struct guest_mem mem;
static char base[64];

struct blk {
	struct bus bus;
	void *dev;
	uint16_t next_used;
};

static void setup(void)
{
	uint8_t *p = malloc(DISK_SIZE);
	int fd;

	cr_assert_eq(guest_mem_create(&mem, 16 * MiB, NULL), 0);
	snprintf(base, sizeof(base), "/tmp/vmfork-blk-XXXXXX");
	fd = mkstemp(base);
	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 9));
	cr_assert_eq(write(fd, p, DISK_SIZE), DISK_SIZE);
	close(fd);
	free(p);
}

static void teardown(void)
{
	unlink(base);
	guest_mem_destroy(&mem);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

static uint32_t rd(struct blk *b, uint64_t reg)
{
	uint32_t v = 0;

	cr_assert(bus_access(&b->bus, BUS_MMIO, SLOT + reg, (uint8_t *)&v, 4, false));
	return v;
}

static void wr(struct blk *b, uint64_t reg, uint32_t v)
{
	cr_assert(bus_access(&b->bus, BUS_MMIO, SLOT + reg, (uint8_t *)&v, 4, true));
}

/* A device on its own bus, configured with arg; not yet attached. */
static void make(struct blk *b, const char *arg)
{
	struct device_host host = { .mem = &mem };

	memset(b, 0, sizeof(*b));
	bus_init(&b->bus);
	cr_assert_eq(virtio_blk_device.create(&b->dev, &b->bus, &host), 0);
	cr_assert_eq(virtio_blk_device.configure(b->dev, arg), 0);
}

/* Features set (the low word, if any, before); from status 3 on. */
static void driver_setup_from(struct blk *b, uint32_t status)
{
	wr(b, 0x024, 1);
	wr(b, 0x020, 1); /* VERSION_1 */
	wr(b, 0x070, 3 | 8);
	cr_assert(rd(b, 0x070) & 8, "FEATURES_OK refused");
	wr(b, 0x030, 0);
	wr(b, 0x038, QSIZE);
	wr(b, 0x080, (uint32_t)DESC);
	wr(b, 0x090, (uint32_t)AVAIL);
	wr(b, 0x0a0, (uint32_t)USED);
	wr(b, 0x044, 1);
	wr(b, 0x070, 3 | 8 | 4);
	cr_assert_eq(rd(b, 0x070), status | 8 | 4);
}

static void driver_setup(struct blk *b)
{
	wr(b, 0x070, 0);
	wr(b, 0x070, 3);
	driver_setup_from(b, 3);
}

/* A booted VM's device: made, its disk opened, its driver set up. */
static void booted(struct blk *b, const char *arg)
{
	make(b, arg);
	cr_assert_eq(virtio_blk_device.attach(b->dev), 0);
	driver_setup(b);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d = { addr, len, flags, next };

	cr_assert_eq(guest_write(&mem, DESC + 16ULL * i, &d, sizeof(d)), 0);
}

static void offer(uint16_t head)
{
	uint16_t idx;

	guest_read(&mem, AVAIL + 2, &idx, 2);
	guest_write(&mem, AVAIL + 4 + 2ULL * (idx % QSIZE), &head, 2);
	idx++;
	guest_write(&mem, AVAIL + 2, &idx, 2);
}

/* A request chain: header, data (len bytes, device-writable for IN), status. */
static void chain(uint32_t type, uint64_t sector, uint32_t len)
{
	struct { uint32_t type, reserved; uint64_t sector; } h = { type, 0, sector };
	uint16_t wflag = type == VIRTIO_BLK_T_OUT ? 0 : VIRTQ_DESC_F_WRITE;
	uint8_t status = 0xee;

	guest_write(&mem, HDR, &h, sizeof(h));
	guest_write(&mem, STAT, &status, 1);
	desc(0, HDR, sizeof(h), VIRTQ_DESC_F_NEXT, len ? 1 : 2);
	if (len)
		desc(1, DATA, len, VIRTQ_DESC_F_NEXT | wflag, 2);
	desc(2, STAT, 1, VIRTQ_DESC_F_WRITE, 0);
}

/* Notify, and the used entry's length and the status byte. */
static uint8_t kick(struct blk *b, uint32_t *used)
{
	uint32_t e[2];
	uint8_t status;

	wr(b, 0x050, 0);
	guest_read(&mem, USED + 4 + 8ULL * (b->next_used++ % QSIZE), e, sizeof(e));
	guest_read(&mem, STAT, &status, 1);
	if (used)
		*used = e[1];
	return status;
}

static uint8_t request(struct blk *b, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used)
{
	chain(type, sector, len);
	offer(0);
	return kick(b, used);
}

static void put_data(const void *p, uint32_t len)
{
	cr_assert_eq(guest_write(&mem, DATA, p, len), 0);
}

static void assert_sector_is(struct blk *b, uint64_t sector, const uint8_t *want, uint32_t len)
{
	uint8_t got[4096];

	cr_assert_eq(request(b, VIRTIO_BLK_T_IN, sector, len, NULL), VIRTIO_BLK_S_OK);
	guest_read(&mem, DATA, got, len);
	cr_assert_arr_eq(got, want, len, "sector %llu", (unsigned long long)sector);
}

static void file_bytes(uint8_t *out, uint64_t off, uint32_t len)
{
	int fd = open(base, O_RDONLY);

	cr_assert_eq(pread(fd, out, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void destroy(struct blk *b)
{
	virtio_blk_device.destroy(b->dev);
}

Test(virtio_blk, config_space_and_features)
{
	struct blk b;
	uint64_t cap = 0;

	make(&b, base);
	cr_expect_eq(rd(&b, 0x008), VIRTIO_BLK_ID);
	cr_assert_eq(virtio_blk_device.attach(b.dev), 0);
	cr_assert(bus_access(&b.bus, BUS_MMIO, SLOT + 0x100, (uint8_t *)&cap, 8, false));
	cr_expect_eq(cap, DISK_SIZE / 512, "capacity %llu: the 100-byte tail is no sector",
		     (unsigned long long)cap);
	wr(&b, 0x014, 0);
	cr_expect_eq(rd(&b, 0x010), VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_FLUSH);
	destroy(&b);
}

Test(virtio_blk, bad_arguments_are_refused)
{
	struct device_host host = { .mem = &mem };
	struct bus bus;
	void *dev;

	bus_init(&bus);
	cr_assert_eq(virtio_blk_device.create(&dev, &bus, &host), 0);
	cr_expect_eq(virtio_blk_device.configure(dev, ""), -EINVAL);
	cr_expect_eq(virtio_blk_device.configure(dev, ",ro"), -EINVAL);
	cr_expect_eq(virtio_blk_device.configure(dev, "f,rw"), -EINVAL);
	virtio_blk_device.destroy(dev);
}

Test(virtio_blk, writes_and_reads_reach_the_file_before_a_fork)
{
	struct blk b;
	uint8_t data[1024], back[1024];

	booted(&b, base);
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(0xa5 ^ i);
	put_data(data, sizeof(data));
	cr_assert_eq(request(&b, VIRTIO_BLK_T_OUT, 3, sizeof(data), NULL), VIRTIO_BLK_S_OK);
	cr_assert_eq(request(&b, VIRTIO_BLK_T_FLUSH, 0, 0, NULL), VIRTIO_BLK_S_OK);
	file_bytes(back, 3 * 512, sizeof(back));
	cr_assert_arr_eq(back, data, sizeof(data));
	assert_sector_is(&b, 3, data, sizeof(data));
	destroy(&b);
}

Test(virtio_blk, bad_requests_get_an_error_never_a_crash)
{
	struct virtio_blk_stats s;
	uint32_t used;
	uint64_t last = DISK_SIZE / 512 - 1;
	char id[21] = { 0 };
	struct blk b;

	booted(&b, base);
	cr_expect_eq(request(&b, VIRTIO_BLK_T_IN, last, 512, &used), VIRTIO_BLK_S_OK);
	cr_expect_eq(used, 513);
	cr_expect_eq(request(&b, VIRTIO_BLK_T_IN, last, 1024, NULL), VIRTIO_BLK_S_IOERR, "past the end");
	cr_expect_eq(request(&b, VIRTIO_BLK_T_IN, last + 1, 512, NULL), VIRTIO_BLK_S_IOERR);
	cr_expect_eq(request(&b, VIRTIO_BLK_T_OUT, UINT64_MAX, 512, NULL), VIRTIO_BLK_S_IOERR,
		     "a sector whose byte offset overflows");
	cr_expect_eq(request(&b, VIRTIO_BLK_T_OUT, UINT64_MAX / 512, 1024, NULL), VIRTIO_BLK_S_IOERR);
	cr_expect_eq(request(&b, VIRTIO_BLK_T_IN, 0, 100, NULL), VIRTIO_BLK_S_IOERR, "not whole sectors");
	cr_expect_eq(request(&b, 77, 0, 512, NULL), VIRTIO_BLK_S_UNSUPP);
	cr_expect_eq(request(&b, VIRTIO_BLK_T_GET_ID, 0, 20, &used), VIRTIO_BLK_S_OK);
	cr_expect_eq(used, 21);
	guest_read(&mem, DATA, id, 20);
	cr_expect_str_eq(id, strrchr(base, '/') + 1);
	/* A header of 8 bytes: refused. */
	desc(0, HDR, 8, VIRTQ_DESC_F_NEXT, 2);
	offer(0);
	cr_expect_eq(kick(&b, NULL), VIRTIO_BLK_S_IOERR, "a short header");
	/* No writable byte for the status: returned unanswered. */
	desc(0, HDR, 16, 0, 0);
	offer(0);
	kick(&b, &used);
	cr_expect_eq(used, 0);
	/* A status byte but the data readable for an IN: nothing to read into. */
	chain(VIRTIO_BLK_T_IN, 0, 512);
	desc(1, DATA, 512, VIRTQ_DESC_F_NEXT, 2);
	offer(0);
	cr_expect_eq(kick(&b, NULL), VIRTIO_BLK_S_IOERR);
	virtio_blk_stats(b.dev, &s);
	cr_expect_eq(s.bad_requests, 8, "bad requests counted: %llu", (unsigned long long)s.bad_requests);
	cr_expect_eq(s.unsupported, 1);
	/* The queue still serves. */
	cr_expect_eq(request(&b, VIRTIO_BLK_T_IN, 0, 4096, NULL), VIRTIO_BLK_S_OK);
	destroy(&b);
}

Test(virtio_blk, a_read_only_disk_refuses_writes)
{
	uint8_t data[512] = { 1 }, before[512], after[512];
	struct virtio_blk_state st;
	struct blk b;
	char arg[80];

	snprintf(arg, sizeof(arg), "%s,ro", base);
	make(&b, arg);
	cr_assert_eq(virtio_blk_device.attach(b.dev), 0);
	wr(&b, 0x014, 0);
	cr_expect(rd(&b, 0x010) & VIRTIO_BLK_F_RO);
	/* The driver takes RO: the state says so and must still pass check(). */
	wr(&b, 0x070, 3);
	wr(&b, 0x024, 0);
	wr(&b, 0x020, VIRTIO_BLK_F_RO);
	driver_setup_from(&b, 3);
	file_bytes(before, 0, sizeof(before));
	put_data(data, sizeof(data));
	cr_expect_eq(request(&b, VIRTIO_BLK_T_OUT, 0, 512, NULL), VIRTIO_BLK_S_IOERR);
	file_bytes(after, 0, sizeof(after));
	cr_expect_arr_eq(before, after, sizeof(before));
	virtio_blk_device.save(b.dev, &st);
	cr_expect(st.transport.driver_features & VIRTIO_BLK_F_RO);
	cr_expect_eq(virtio_blk_device.check(&st), 0);
	destroy(&b);
}

/* What a fork does: save + hold in the parent; configure, restore, adopt, attach in the child. */
static void clone_of(struct blk *parent, struct blk *child, struct virtio_blk_state *st)
{
	struct device_ref *ref;

	virtio_blk_device.save(parent->dev, st);
	cr_assert_eq(virtio_blk_device.hold(parent->dev, &ref), 0);
	cr_assert_not_null(ref);
	make(child, base);
	cr_assert_eq(virtio_blk_device.check(st), 0);
	cr_assert_eq(virtio_blk_device.restore(child->dev, st), 0);
	cr_assert_eq(virtio_blk_device.adopt(child->dev, ref), 0);
	device_ref_put(ref); /* the snapshot's, freed */
	cr_assert_eq(virtio_blk_device.attach(child->dev), 0);
	child->next_used = parent->next_used;
}

Test(virtio_blk, a_clone_writes_its_own_overlay)
{
	struct virtio_blk_state st;
	struct virtio_blk_stats s;
	uint8_t p[512], c[512], file[512], file_after[512];
	struct blk parent, child;

	booted(&parent, base);
	clone_of(&parent, &child, &st);
	file_bytes(file, 512, sizeof(file));
	memset(p, 'p', sizeof(p));
	memset(c, 'c', sizeof(c));
	put_data(p, sizeof(p));
	cr_assert_eq(request(&parent, VIRTIO_BLK_T_OUT, 1, 512, NULL), VIRTIO_BLK_S_OK);
	put_data(c, sizeof(c));
	cr_assert_eq(request(&child, VIRTIO_BLK_T_OUT, 1, 512, NULL), VIRTIO_BLK_S_OK);
	assert_sector_is(&parent, 1, p, 512);
	assert_sector_is(&child, 1, c, 512);
	file_bytes(file_after, 512, sizeof(file_after));
	cr_assert_arr_eq(file, file_after, 512, "the base file changed after the fork");
	virtio_blk_stats(child.dev, &s);
	cr_expect_eq(s.private_bytes, 4096, "one block of its own");
	destroy(&parent);
	assert_sector_is(&child, 1, c, 512);
	destroy(&child);
}

/* A request the driver offered but the device had not seen when the VM was captured. */
Test(virtio_blk, a_clone_serves_the_request_its_parent_left)
{
	struct virtio_blk_state st;
	struct blk parent, child;
	uint8_t data[512], want[512];

	booted(&parent, base);
	chain(VIRTIO_BLK_T_IN, 2, 512);
	offer(0); /* no notify yet */
	clone_of(&parent, &child, &st);
	cr_assert_eq(kick(&child, NULL), VIRTIO_BLK_S_OK);
	guest_read(&mem, DATA, data, sizeof(data));
	file_bytes(want, 2 * 512, sizeof(want));
	cr_assert_arr_eq(data, want, sizeof(data));
	destroy(&parent);
	destroy(&child);
}

/* Reset-in-place: the mark's capture (hold), writes, then its state loaded back (restore, adopt). */
Test(virtio_blk, a_reset_forgets_the_writes_since_the_mark)
{
	struct virtio_blk_state st;
	struct device_ref *mark;
	uint8_t a[512], x[512];
	struct blk b;

	booted(&b, base);
	memset(a, 'a', sizeof(a));
	memset(x, 'x', sizeof(x));
	put_data(a, sizeof(a));
	cr_assert_eq(request(&b, VIRTIO_BLK_T_OUT, 4, 512, NULL), VIRTIO_BLK_S_OK);
	virtio_blk_device.save(b.dev, &st);
	cr_assert_eq(virtio_blk_device.hold(b.dev, &mark), 0);
	put_data(x, sizeof(x));
	cr_assert_eq(request(&b, VIRTIO_BLK_T_OUT, 4, 512, NULL), VIRTIO_BLK_S_OK);
	cr_assert_eq(request(&b, VIRTIO_BLK_T_OUT, 9, 512, NULL), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 2; i++) {
		uint8_t file9[512];

		cr_assert_eq(virtio_blk_device.restore(b.dev, &st), 0);
		cr_assert_eq(virtio_blk_device.adopt(b.dev, mark), 0);
		b.next_used = st.transport.queues[0].used_idx;
		assert_sector_is(&b, 4, a, 512);
		file_bytes(file9, 9 * 512, sizeof(file9));
		assert_sector_is(&b, 9, file9, 512);
		put_data(x, sizeof(x));
		cr_assert_eq(request(&b, VIRTIO_BLK_T_OUT, 4, 512, NULL), VIRTIO_BLK_S_OK);
	}
	device_ref_put(mark);
	destroy(&b);
}

Test(virtio_blk, a_snapshot_carries_the_overlay)
{
	struct virtio_blk_state st;
	struct device_ref *ref;
	struct blk b, r;
	uint8_t w[512];
	char dir[64], cmd[128];

	booted(&b, base);
	clone_of(&b, &r, &st); /* the first freeze: the file is the base from now on */
	destroy(&r);
	memset(w, 'w', sizeof(w));
	put_data(w, sizeof(w));
	cr_assert_eq(request(&b, VIRTIO_BLK_T_OUT, 7, 512, NULL), VIRTIO_BLK_S_OK);
	virtio_blk_device.save(b.dev, &st);
	cr_assert_eq(virtio_blk_device.hold(b.dev, &ref), 0);
	snprintf(dir, sizeof(dir), "/tmp/vmfork-blksnap-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(virtio_blk_device.export(ref, dir), 0);
	device_ref_put(ref);
	destroy(&b);
	/* A restore in a new process: import, then the state from the file (no reference). */
	make(&r, base);
	cr_assert_eq(virtio_blk_device.import(r.dev, dir), 0);
	cr_assert_eq(virtio_blk_device.restore(r.dev, &st), 0);
	cr_assert_eq(virtio_blk_device.adopt(r.dev, NULL), 0);
	cr_assert_eq(virtio_blk_device.attach(r.dev), 0);
	r.next_used = st.transport.queues[0].used_idx;
	assert_sector_is(&r, 7, w, 512);
	destroy(&r);
	/* Without the folder, the state alone cannot bring the disk back: said, not guessed. */
	make(&r, base);
	cr_assert_eq(virtio_blk_device.restore(r.dev, &st), 0);
	cr_assert_eq(virtio_blk_device.adopt(r.dev, NULL), 0);
	cr_assert_eq(virtio_blk_device.attach(r.dev), -ENOTSUP);
	destroy(&r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
