/* The I/O bus: registration rules and dispatch, with a recording fake device. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/bus.h"

struct bus_rec {
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t last[8];
};

static void rec_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct bus_rec *r = dev;

	r->calls++;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	if (is_write)
		memcpy(r->last, data, len);
	else
		memset(data, 0x5a, len);
}

static const struct bus_dev_ops rec_ops = { .name = "rec", .io = rec_io };

Test(bus, register_and_find)
{
	struct bus bus;
	struct bus_rec a = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x3f8, 8, &rec_ops, &a), 0);
	cr_assert_eq(bus.nranges, 1);
	cr_assert_not_null(bus_find(&bus, BUS_PIO, 0x3f8));
	cr_assert_not_null(bus_find(&bus, BUS_PIO, 0x3ff));
	cr_assert_null(bus_find(&bus, BUS_PIO, 0x3f7));
	cr_assert_null(bus_find(&bus, BUS_PIO, 0x400));
	cr_assert_null(bus_find(&bus, BUS_MMIO, 0x3f8));
}

Test(bus, overlap_rejected)
{
	struct bus bus;
	struct bus_rec a = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1000, 0x1000, &rec_ops, &a), 0);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1000, 1, &rec_ops, &a), -EEXIST);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1fff, 0x10, &rec_ops, &a), -EEXIST);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0xff0, 0x11, &rec_ops, &a), -EEXIST);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x0, 0x10000, &rec_ops, &a), -EEXIST);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1800, 0x10, &rec_ops, &a), -EEXIST);
	cr_assert_eq(bus.nranges, 1);
}

Test(bus, pio_and_mmio_are_separate)
{
	struct bus bus;
	struct bus_rec a = { 0 }, b = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x60, 8, &rec_ops, &a), 0);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x60, 8, &rec_ops, &b), 0);
	cr_assert_eq(bus_find(&bus, BUS_PIO, 0x61)->dev, &b);
	cr_assert_eq(bus_find(&bus, BUS_MMIO, 0x61)->dev, &a);
}

Test(bus, adjacent_ranges_ok)
{
	struct bus bus;
	struct bus_rec a = { 0 }, b = { 0 }, c = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x64, 1, &rec_ops, &b), 0);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x60, 4, &rec_ops, &a), 0);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x65, 1, &rec_ops, &c), 0);
	cr_assert_eq(bus_find(&bus, BUS_PIO, 0x63)->dev, &a);
	cr_assert_eq(bus_find(&bus, BUS_PIO, 0x64)->dev, &b);
	cr_assert_eq(bus_find(&bus, BUS_PIO, 0x65)->dev, &c);
	cr_assert_null(bus_find(&bus, BUS_PIO, 0x66));
	/* The table stays sorted whatever the registration order. */
	cr_assert_eq(bus.ranges[0].base, 0x60);
	cr_assert_eq(bus.ranges[1].base, 0x64);
	cr_assert_eq(bus.ranges[2].base, 0x65);
}

Test(bus, bad_ranges_rejected)
{
	struct bus bus;
	struct bus_rec a = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1000, 0, &rec_ops, &a), -EINVAL);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, UINT64_MAX - 7, 9, &rec_ops, &a), -EINVAL);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 2, UINT64_MAX, &rec_ops, &a), -EINVAL);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1000, 8, NULL, &a), -EINVAL);
	/* A range that ends exactly at the top of the space does not wrap. */
	cr_assert_eq(bus_register(&bus, BUS_MMIO, UINT64_MAX - 7, 8, &rec_ops, &a), 0);
	cr_assert_eq(bus_find(&bus, BUS_MMIO, UINT64_MAX)->dev, &a);
}

Test(bus, full_table)
{
	struct bus bus;
	struct bus_rec a = { 0 };

	bus_init(&bus);
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1000 * (i + 1), 0x10, &rec_ops, &a), 0);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x100000, 0x10, &rec_ops, &a), -ENOSPC);
	/* An overlapping range still reports the overlap, not the full table. */
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0x1000, 0x10, &rec_ops, &a), -EEXIST);
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		cr_assert_not_null(bus_find(&bus, BUS_MMIO, 0x1000 * (i + 1) + 0xf));
}

Test(bus, dispatch_offset)
{
	struct bus bus;
	struct bus_rec a = { 0 };
	uint8_t data[8] = { 1, 2, 3, 4 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_MMIO, 0xd0000000, 0x1000, &rec_ops, &a), 0);
	cr_assert(bus_access(&bus, BUS_MMIO, 0xd0000010, data, 4, true));
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(a.offset, 0x10);
	cr_assert_eq(a.len, 4);
	cr_assert(a.is_write);
	cr_assert_eq(memcmp(a.last, data, 4), 0);
	cr_assert(bus_access(&bus, BUS_MMIO, 0xd0000ff8, data, 8, false));
	cr_assert_eq(a.offset, 0xff8);
	cr_assert_eq(data[7], 0x5a);
	cr_assert_eq(bus.unclaimed_reads + bus.unclaimed_writes, 0);
}

Test(bus, unclaimed_access)
{
	struct bus bus;
	struct bus_rec a = { 0 };
	uint8_t data[8] = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x3f8, 8, &rec_ops, &a), 0);
	cr_assert_not(bus_access(&bus, BUS_PIO, 0x80, data, 4, false));
	cr_assert_eq(data[0] & data[1] & data[2] & data[3], 0xff);
	cr_assert_eq(data[4], 0);
	cr_assert_eq(bus.unclaimed_reads, 1);
	cr_assert_not(bus_access(&bus, BUS_PIO, 0x80, data, 1, true));
	cr_assert_eq(bus.unclaimed_writes, 1);
	cr_assert_eq(a.calls, 0);
}

Test(bus, access_past_end_is_unclaimed)
{
	struct bus bus;
	struct bus_rec a = { 0 };
	uint8_t data[8] = { 0 };

	bus_init(&bus);
	cr_assert_eq(bus_register(&bus, BUS_PIO, 0x3f8, 8, &rec_ops, &a), 0);
	cr_assert_not(bus_access(&bus, BUS_PIO, 0x3fe, data, 4, false));
	cr_assert_eq(data[0], 0xff);
	cr_assert_not(bus_access(&bus, BUS_PIO, 0x3ff, data, 2, true));
	cr_assert_eq(a.calls, 0);
	cr_assert_eq(bus.unclaimed_reads, 1);
	cr_assert_eq(bus.unclaimed_writes, 1);
	/* The last byte alone is the device's. */
	cr_assert(bus_access(&bus, BUS_PIO, 0x3ff, data, 1, false));
	cr_assert_eq(a.offset, 7);
	cr_assert_not(bus_access(&bus, BUS_PIO, 0x3f8, data, 0, false));
	cr_assert_eq(a.calls, 1);
}
