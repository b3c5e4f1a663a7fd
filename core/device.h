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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml;
struct bus;
struct guest_mem;

#define DEVICE_MAX       16   /* devices in the table */
#define DEVICE_STATE_MAX 2048 /* bytes of a device's saved state */
#define DEVICE_ARG_MAX   512  /* bytes of its option's argument, with the NUL */

/* What the VM gives every device. */
struct device_host {
	/* Drive interrupt line gsi (level 0 or 1). */
	void (*set_irq)(void *opaque, unsigned gsi, int level);
	/* Bytes for the VM's console. */
	void (*console_out)(void *opaque, const uint8_t *buf, size_t len);
	/* The guest asked for a machine reset. */
	void (*reset_machine)(void *opaque);
	/* Raise GED event bits (core/layout.h ACPI_EVENT_*): the guest runs their AML. */
	void (*acpi_event)(void *opaque, uint32_t events);
	/* The guest powered the machine off (ACPI sleep state S5). */
	void (*poweroff)(void *opaque);
	/* The VM's clone id (0 for a booted VM): per-clone backends name themselves by it. */
	uint64_t (*vm_id)(void *opaque);
	/*
	 * Guest RAM. Devices reach it only through guest_read() and guest_write()
	 * (core/memory.h), which bound every access and let reset-in-place see
	 * the pages a device wrote.
	 */
	struct guest_mem *mem;
	void *opaque;
};

/*
 * Something of this process a saved state names but cannot contain: a
 * disk's frozen layers, say. A device hands one out with its state (hold)
 * and gets it back with the state (adopt); a snapshot in memory keeps a
 * reference (struct device_state.ref), a state file never has one, so a
 * state read back from a file comes with none. Embedded in the device's own
 * object; release frees that object when the last reference goes.
 */
struct device_ref {
	unsigned refs;
	void (*release)(struct device_ref *ref);
};

static inline struct device_ref *device_ref_get(struct device_ref *ref)
{
	if (ref)
		__atomic_add_fetch(&ref->refs, 1, __ATOMIC_RELAXED);
	return ref;
}

static inline void device_ref_put(struct device_ref *ref)
{
	if (ref && __atomic_sub_fetch(&ref->refs, 1, __ATOMIC_ACQ_REL) == 0)
		ref->release(ref);
}

struct device_type {
	const char *name;         /* its node under the state file's devices, e.g. "uart@3f8" */
	/*
	 * The option that turns it on ("disk" for `run --disk ARG`), or NULL for a
	 * device every VM has. An optional device is made in every VM, claiming its
	 * ranges, but stays absent (invisible to the guest) until configured.
	 */
	const char *option;
	size_t state_size;        /* bytes of its saved state, at most DEVICE_STATE_MAX */
	/* Make one and claim its ranges on bus. */
	int (*create)(void **dev, struct bus *bus, const struct device_host *host);
	/*
	 * Turn an optional device on with its option's argument (at most once per
	 * instance): from the command line, or from a snapshot or a fork parent
	 * that had it on. 0, or a negative errno with the reason logged.
	 */
	int (*configure)(void *dev, const char *arg);
	void (*destroy)(void *dev);
	void (*save)(void *dev, void *state);
	/* Whether state is one save() could have made: 0 or -EINVAL. */
	int (*check)(const void *state);
	/* Load a checked state. */
	int (*restore)(void *dev, const void *state);
	/* Bytes typed on the console, for the device that takes them (NULL for others). */
	size_t (*receive)(void *dev, const uint8_t *buf, size_t len);
	/* Append its Device() nodes to the DSDT (core/aml.h); NULL or nothing while absent. */
	int (*describe)(void *dev, struct aml *dsdt);
	/*
	 * The VM has just become a clone with its own identity (vm_id()), its state
	 * loaded, its vCPUs not yet run: take a fresh identity (VMGenID, a MAC,
	 * the vsock transport reset). NULL: nothing to do.
	 */
	int (*forked)(void *dev);
	/*
	 * Open this VM's own backends (a TAP, a listening socket, a disk overlay),
	 * named by its id (vm_id()) where they must differ per VM. Called once per
	 * VM before its vCPUs first run: as it boots, or after forked() as it
	 * becomes a clone or a restored VM. configure() only checks and keeps the
	 * argument: it also runs in warm shells that have no identity yet.
	 * NULL: nothing to open.
	 */
	int (*attach)(void *dev);
	/*
	 * Optional: take a new argument for a clone's own backend (a fork
	 * request's per-clone TAP or vsock path), after forked() and before
	 * attach(), in place of the one the VM was configured with. It checks
	 * arg as configure() does; the device stays on. 0 or -errno, logged.
	 */
	int (*rebind)(void *dev, const char *arg);
	/*
	 * Optional, for a device with a thread of its own (an I/O thread moving
	 * data between host sockets and the guest): the vCPUs stop (false: all
	 * parked; a capture, a reset or a move to another machine may follow) or
	 * run again (true). Once it returns false, the device touches neither
	 * guest RAM nor interrupt lines until true. A VM starts stopped.
	 */
	void (*set_running)(void *dev, bool running);
	/*
	 * Optional, for a device whose state names live objects (a disk's layers).
	 * hold: right after save(), with the VM paused: a new reference to what
	 * the state names in *ref (NULL: nothing), or a negative errno that fails
	 * the capture. adopt: right after restore(), with the reference the
	 * snapshot kept (NULL from a state file); the device takes its own. Into
	 * the VM the state was captured from (a reset), it goes back to it.
	 */
	int (*hold)(void *dev, struct device_ref **ref);
	int (*adopt)(void *dev, struct device_ref *ref);
	/*
	 * Optional, snapshots on disk: export writes what ref names into the
	 * snapshot's folder (on the snapshot's writer thread, the VM running on);
	 * import reads it back into a device about to be restored from that
	 * folder, before its state is loaded (then adopt gets NULL).
	 */
	int (*export)(struct device_ref *ref, const char *dir);
	int (*import)(void *dev, const char *dir);
};

/* The table place of the device whose option is name, or -1. */
int device_by_option(const char *name);

/* The table, in creation order, NULL-terminated (devices/table.c). */
extern const struct device_type *const device_table[];

/* type's place in the table, or -1. */
int device_index(const struct device_type *type);

/* A device's saved state, as a snapshot holds it (index: its place in the table). */
struct device_state {
	bool on;                         /* an optional device was turned on ... */
	char arg[DEVICE_ARG_MAX];        /* ... with its option's argument */
	uint8_t bytes[DEVICE_STATE_MAX];
	struct device_ref *ref;          /* what hold() gave, held; never in a state file */
};

/* What the user turned on: each optional device's argument, by table place (NULL: off). */
struct device_config {
	const char *args[DEVICE_MAX];
};

#endif
