#include <errno.h>
#include <string.h>

#include "core/bus.h"

void bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

/* Order of the table: all PIO ranges first, then MMIO, each by base. */
static int range_before(const struct bus_range *r, enum bus_space space, uint64_t base)
{
	if (r->space != space)
		return r->space < space;
	return r->base < base;
}

/* Both ranges are known not to wrap, so their last bytes are exact. */
static int ranges_overlap(const struct bus_range *r, enum bus_space space, uint64_t base,
			  uint64_t len)
{
	uint64_t last = base + (len - 1);

	return r->space == space && base <= r->base + (r->len - 1) && r->base <= last;
}

int bus_register(struct bus *bus, enum bus_space space, uint64_t base, uint64_t len,
		 const struct bus_dev_ops *ops, void *dev)
{
	unsigned pos = 0;

	/* len - 1 > UINT64_MAX - base means the range would run past 2^64 - 1. */
	if (len == 0 || len - 1 > UINT64_MAX - base || !ops || !ops->io)
		return -EINVAL;
	if (space != BUS_PIO && space != BUS_MMIO)
		return -EINVAL;
	for (unsigned i = 0; i < bus->nranges; i++)
		if (ranges_overlap(&bus->ranges[i], space, base, len))
			return -EEXIST;
	if (bus->nranges == BUS_MAX_RANGES)
		return -ENOSPC;
	while (pos < bus->nranges && range_before(&bus->ranges[pos], space, base))
		pos++;
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->nranges - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){
		.space = space, .base = base, .len = len, .ops = ops, .dev = dev,
	};
	bus->nranges++;
	return 0;
}

/* Binary search: this runs on every guest I/O exit. */
const struct bus_range *bus_find(const struct bus *bus, enum bus_space space, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nranges;

	/* Find the first range that starts after (space, addr); the candidate is the one before. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (r->space < space || (r->space == space && r->base <= addr))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct bus_range *r = &bus->ranges[lo - 1];

	if (r->space != space || addr - r->base >= r->len)
		return NULL;
	return r;
}

static void bus_unclaimed(struct bus *bus, uint8_t *data, uint32_t len, bool is_write)
{
	if (is_write) {
		__atomic_fetch_add(&bus->unclaimed_writes, 1, __ATOMIC_RELAXED);
		return;
	}
	/* An ISA or PCI bus with nothing decoding the address floats high. */
	memset(data, 0xff, len);
	__atomic_fetch_add(&bus->unclaimed_reads, 1, __ATOMIC_RELAXED);
}

bool bus_access(struct bus *bus, enum bus_space space, uint64_t addr, uint8_t *data,
		uint32_t len, bool is_write)
{
	const struct bus_range *r;
	uint64_t off;

	if (len == 0 || len > 8) {
		/* No device takes such an access; the caller's buffer still holds len bytes. */
		bus_unclaimed(bus, data, len, is_write);
		return false;
	}
	r = bus_find(bus, space, addr);
	if (!r) {
		bus_unclaimed(bus, data, len, is_write);
		return false;
	}
	off = addr - r->base;
	if (len > r->len - off) {
		bus_unclaimed(bus, data, len, is_write);
		return false;
	}
	r->ops->io(r->dev, off, data, len, is_write);
	return true;
}
