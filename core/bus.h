/*
 * One I/O bus for port I/O and MMIO. Devices claim ranges; overlapping claims
 * are rejected; an access no device claims is handled in bus_access() alone
 * (reads see all ones, writes are dropped, both are counted) and never fails.
 * Ranges are registered before vCPUs run and never change after, so lookups
 * take no lock; each device serialises its own state.
 */
#ifndef CORE_BUS_H
#define CORE_BUS_H

#include <stdbool.h>
#include <stdint.h>

enum bus_space { BUS_PIO, BUS_MMIO };

struct bus_dev_ops {
	const char *name;
	/*
	 * offset is relative to the start of the claimed range; len is 1..8.
	 * A read fills data[0..len); a write consumes it.
	 */
	void (*io)(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
};

struct bus_range {
	enum bus_space space;
	uint64_t base, len;
	const struct bus_dev_ops *ops;
	void *dev;
};

#define BUS_MAX_RANGES 32

struct bus {
	unsigned nranges;
	struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by (space, base) */
	uint64_t unclaimed_reads, unclaimed_writes; /* updated atomically */
};

void bus_init(struct bus *bus);
/* Returns 0, -EINVAL (empty or wrapping range), -EEXIST (overlap) or -ENOSPC. */
int bus_register(struct bus *bus, enum bus_space space, uint64_t base, uint64_t len,
		 const struct bus_dev_ops *ops, void *dev);
/* The device claiming addr, or NULL. */
const struct bus_range *bus_find(const struct bus *bus, enum bus_space space, uint64_t addr);
/*
 * Dispatch one guest access. An access that starts in a device's range but
 * runs past its end is treated as unclaimed. Returns true when a device took it.
 */
bool bus_access(struct bus *bus, enum bus_space space, uint64_t addr, uint8_t *data,
		uint32_t len, bool is_write);

#endif
