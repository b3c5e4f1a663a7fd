/*
 * What a fork, a reset point and a snapshot all take from a paused VM: its
 * RAM frozen as a base, the pages it owns on top of that base (written since
 * the base froze), and its vCPU, VM and device state.
 */
#ifndef FORK_CAPTURE_H
#define FORK_CAPTURE_H

#include <stdbool.h>

#include "core/memory.h"
#include "state/vm_snapshot.h"

struct vm;

struct vm_capture {
	struct vm_snapshot state;
	struct mem_ranges pages;  /* the VM's own pages (none right after freezing) */
	uint8_t *data;            /* their contents, when asked for; else NULL */
	uint64_t freeze_ns;       /* time spent freezing the base (first capture only) */
};

/* The VM is paused. keep_data: copy the own pages aside (they change once it runs). */
int vm_capture(struct vm *vm, bool keep_data, struct vm_capture *c);
/* Write the kept pages back into mem at their places. */
void vm_capture_put_pages(const struct vm_capture *c, struct guest_mem *mem);
void vm_capture_free(struct vm_capture *c);

#endif
