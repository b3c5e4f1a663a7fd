/*
 * An emulated device as a VM sees it: a type registered once in the device
 * table (devices/table.c), which VM creation and teardown (vmm/vm.c), state
 * capture and load (state/vm_snapshot.c) and the state file
 * (state/statefile.c) iterate over. A new device is its own file and one
 * line in the table. (The control device is the VM's own interface, its
 * identity and its calls to the fork engine, and stays outside.)
 */
#ifndef CORE_DEVICE_H
#define CORE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

struct bus;

#define DEVICE_MAX       8    /* devices in the table */
#define DEVICE_STATE_MAX 256  /* bytes of a device's saved state */

/* What the VM gives every device. */
struct device_host {
	/* Drive interrupt line gsi (level 0 or 1). */
	void (*set_irq)(void *opaque, unsigned gsi, int level);
	/* Bytes for the VM's console. */
	void (*console_out)(void *opaque, const uint8_t *buf, size_t len);
	/* The guest asked for a machine reset. */
	void (*reset_machine)(void *opaque);
	void *opaque;
};

struct device_type {
	const char *name;         /* its node under the state file's devices, e.g. "uart@3f8" */
	size_t state_size;        /* bytes of its saved state, at most DEVICE_STATE_MAX */
	/* Make one and claim its ranges on bus. */
	int (*create)(void **dev, struct bus *bus, const struct device_host *host);
	void (*destroy)(void *dev);
	void (*save)(void *dev, void *state);
	/* Whether state is one save() could have made: 0 or -EINVAL. */
	int (*check)(const void *state);
	/* Load a checked state. */
	int (*restore)(void *dev, const void *state);
	/* Bytes typed on the console, for the device that takes them (NULL for others). */
	size_t (*receive)(void *dev, const uint8_t *buf, size_t len);
};

/* The table, in creation order, NULL-terminated (devices/table.c). */
extern const struct device_type *const device_table[];

/* type's place in the table, or -1. */
int device_index(const struct device_type *type);

/* A device's saved state, as a snapshot holds it (index: its place in the table). */
struct device_state {
	uint8_t bytes[DEVICE_STATE_MAX];
};

#endif
