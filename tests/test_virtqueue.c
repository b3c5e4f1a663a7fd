/*
 * The split virtqueue against a hostile driver (devices/virtqueue.c), on
 * guest RAM made without KVM. The transport: tests/test_virtio_mmio.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
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
	desc(1, BUF, 16, VIRTQ_DESC_F_NEXT, 9); /* next beyond the queue ... */
	desc(9, BUF, 16, 0, 0);                 /* ... where a good one lies */
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
	desc(200, BUF, 16, 0, 0);
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

Test(virtqueue, full_ring_and_index_wrap)
{
	uint16_t idx = 65534;

	/* The driver's index and ours both sit just below the 16-bit wrap. */
	guest_write(&mem, AVAIL + 2, &idx, 2);
	vq.st.last_avail = vq.st.used_idx = 65534;
	for (unsigned i = 0; i < QSIZE; i++) {
		desc(i, BUF + 64ULL * i, 64, VIRTQ_DESC_F_WRITE, 0);
		offer((uint16_t)i);
	}
	for (unsigned i = 0; i < QSIZE; i++) {
		cr_assert_eq(vq_pop(&vq, &chain), 1, "entry %u of a full ring", i);
		cr_expect_eq(chain.head, i);
		cr_expect_eq(vq_push(&vq, chain.head, 1), 0);
	}
	cr_expect_eq(vq_pop(&vq, &chain), 0);
	cr_expect_eq(vq.st.last_avail, 6, "wrapped past 65535");
	cr_expect_eq(vq.stats.broken, 0);
}

Test(virtqueue, used_ring_holds_heads_and_lengths)
{
	uint32_t e[2];
	uint16_t used_idx;

	desc(2, BUF, 32, VIRTQ_DESC_F_WRITE, 0);
	desc(6, BUF + 0x100, 32, VIRTQ_DESC_F_WRITE, 0);
	offer(2);
	offer(6);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	/* Completed out of order, as a disk may: the ring says which head is done. */
	cr_expect_eq(vq_push(&vq, 6, 17), 0);
	cr_expect_eq(vq_push(&vq, 2, 32), 0);
	guest_read(&mem, USED + 2, &used_idx, 2);
	cr_expect_eq(used_idx, 2, "the used index the driver sees");
	guest_read(&mem, USED + 4, e, sizeof(e));
	cr_expect(e[0] == 6 && e[1] == 17, "first used element {%u, %u}", e[0], e[1]);
	guest_read(&mem, USED + 12, e, sizeof(e));
	cr_expect(e[0] == 2 && e[1] == 32, "second used element {%u, %u}", e[0], e[1]);
	cr_expect_eq(vq_push(&vq, QSIZE, 0), -EINVAL, "a head no entry of the queue has");
	guest_read(&mem, USED + 2, &used_idx, 2);
	cr_expect_eq(used_idx, 2, "a refused push moved the index");
}

Test(virtqueue, chain_of_queue_size_is_no_loop)
{
	for (unsigned i = 0; i < QSIZE; i++)
		desc(i, BUF + 16ULL * i, 16, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(0);
	cr_expect_eq(vq_pop(&vq, &chain), 1);
	cr_expect_eq(chain.nseg, QSIZE);
	cr_expect_eq(chain.readable, 16 * QSIZE);
}

Test(virtqueue, ranges_that_leave_ram_are_bad)
{
	desc(0, 16 * MiB - 8, 16, 0, 0); /* starts in RAM, ends beyond */
	offer(0);
	expect_bad("straddling the end of RAM");
	desc(0, 16 * MiB, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	expect_bad("the first byte after RAM");
	desc(0, 16 * MiB - 16, 16, 0, 0);
	offer(0);
	cr_expect_eq(vq_pop(&vq, &chain), 1, "the last 16 bytes of RAM are RAM");
}

/* 256 descriptors of 16 MiB add up to 4 GiB: more than a used length can say. */
Test(virtqueue, total_length_past_32_bits_is_bad)
{
	vq.st.size = VQ_MAX_SIZE;
	for (unsigned i = 0; i < VQ_MAX_SIZE; i++)
		desc(i, 0, 16 * MiB, i + 1 < VQ_MAX_SIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(0);
	expect_bad("256 x 16 MiB");
	offer(1);
	cr_expect_eq(vq_pop(&vq, &chain), 1, "from head 1: 255 x 16 MiB fits");
	cr_expect_eq(chain.readable, 255 * 16 * MiB);
}

Test(virtqueue, copies_cross_segments_and_stop_at_the_chain)
{
	uint8_t out[8];

	desc(0, BUF, 4, VIRTQ_DESC_F_NEXT, 1);
	desc(1, BUF + 0x100, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	desc(2, BUF + 0x200, 8, VIRTQ_DESC_F_WRITE, 0);
	guest_write(&mem, BUF, "abcd", 4);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_expect_eq(vq_read(&vq, &chain, 2, out, 8), 2, "the readable part ends at 4");
	cr_expect_arr_eq(out, "cd", 2);
	cr_expect_eq(vq_read(&vq, &chain, 4, out, 8), 0, "an offset past the readable part");
	cr_expect_eq(vq_write(&vq, &chain, 4, "0123456789", 10), 10);
	guest_read(&mem, BUF + 0x104, out, 4);
	cr_expect_arr_eq(out, "0123", 4, "the first writable segment's tail");
	guest_read(&mem, BUF + 0x200, out, 6);
	cr_expect_arr_eq(out, "456789", 6, "the second's head");
	cr_expect_eq(vq_write(&vq, &chain, 16, "x", 1), 0, "an offset past the writable part");
}

Test(virtqueue, interrupts_only_for_something_and_when_wanted)
{
	uint16_t no_interrupt = VIRTQ_AVAIL_F_NO_INTERRUPT;

	cr_expect_not(vq_wants_interrupt(&vq), "nothing was pushed");
	desc(0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	vq_push(&vq, chain.head, 16);
	cr_expect(vq_wants_interrupt(&vq));
	cr_expect_not(vq_wants_interrupt(&vq), "already signalled");
	guest_write(&mem, AVAIL, &no_interrupt, 2);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	vq_push(&vq, chain.head, 16);
	cr_expect_not(vq_wants_interrupt(&vq), "the driver set VIRTQ_AVAIL_F_NO_INTERRUPT");
}

Test(virtqueue, used_ring_beyond_ram_breaks_the_ring)
{
	vq.st.used = 0xfffffff000000000ULL;
	desc(0, BUF, 16, VIRTQ_DESC_F_NEXT, 0); /* a loop, to be returned */
	offer(0);
	cr_expect_eq(vq_pop(&vq, &chain), -EIO, "a bad chain that cannot be returned");
	cr_expect_eq(vq.stats.broken, 1);
}
