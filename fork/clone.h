/*
 * One way for a VM to become a clone (fork/clone.c): a fork's child, a VM
 * restored from a snapshot on disk, and a clone in a worker process all go
 * through vm_become_clone().
 */
#ifndef FORK_CLONE_H
#define FORK_CLONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct device_config;
struct vm;
struct vm_snapshot;

/* Who the clone is: what its control device says, and its ids in its VMM. */
struct clone_identity {
	uint64_t id;          /* CLONE_ID and the VM's id */
	uint64_t parent_id;   /* the VM it was made from (itself for a restored VM) */
	uint64_t generation;  /* GENERATION: the state's + 1 */
	uint64_t child_index; /* CHILD_INDEX */
	/*
	 * Its own backends: for each device of the table whose entry is not
	 * NULL, the argument it rebinds to (core/device.h rebind; "%u" is the
	 * device's to expand). NULL: every device keeps the state's argument.
	 */
	const struct device_config *devices;
};

/* Writes the clone's own pages over its mapped base; NULL put: none. */
struct clone_pages {
	int (*put)(struct vm *vm, void *arg);
	void *arg;
};

/*
 * vm, whose RAM maps the base already, becomes the clone: its own pages
 * written, then snap loaded (unless state_loaded: a warm shell holds it),
 * then its identity (FORK_RESULT and FORK_FIRST_ID 0, as in any child) and
 * its console, console_fmt with "%u" made its id. Returns 0 or -errno; on
 * failure the caller destroys vm.
 */
int vm_become_clone(struct vm *vm, const struct vm_snapshot *snap, bool state_loaded,
		    const struct clone_pages *pages, const struct clone_identity *id,
		    const char *console_fmt);

/* fmt (NULL: "none") with its first "%u" made id: 0, or -ENAMETOOLONG when it does not fit. */
int clone_console_spec(const char *fmt, uint64_t id, char *out, size_t size);

#endif
