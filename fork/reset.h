/*
 * Reset-in-place: return a running VM to a point marked earlier, as a
 * fuzzer returns to its snapshot thousands of times a second. Marking
 * freezes the VM's RAM as a base (as a fork does; the VM goes on MAP_PRIVATE
 * over it), captures its vCPU, VM and device state, keeps a copy of the few
 * pages the VM owned at the mark (a clone's copies of its parent's writes)
 * and turns on dirty logging. A reset copies back, from that copy or from the
 * base, only the pages written since the last reset (KVM's dirty log and
 * guest_write()'s own), and reloads the state. The cost follows the pages
 * written, not the RAM size.
 */
#ifndef FORK_RESET_H
#define FORK_RESET_H

#include <stdint.h>

struct vm;
struct vcpu;

struct reset_stats {
	uint64_t pages_reset;     /* written since the last reset, copied back */
	uint64_t log_ns;          /* reading the dirty log */
	uint64_t copy_ns, load_ns, total_ns;
};

/* Mark the reset point of a paused VM (op_lock held; self: the calling vCPU or NULL). */
int vm_mark_reset_point_locked(struct vm *vm);
/* Return a paused VM to its reset point (op_lock held). -ENOENT when none. */
int vm_reset_locked(struct vm *vm, struct reset_stats *st);

/* The same from any thread but the VM's own: pause, act, resume. */
int vm_mark_reset_point(struct vm *vm);
int vm_reset(struct vm *vm, struct reset_stats *st);

/* The control device's SNAPSHOT and RESET registers, on the writing vCPU's thread. */
void vm_guest_mark(struct vm *vm, struct vcpu *self, uint64_t counter_gpa);
void vm_guest_reset(struct vm *vm, struct vcpu *self);

/* Free what a reset point holds (vm_destroy). */
void vm_drop_reset_point(struct vm *vm);

#endif
