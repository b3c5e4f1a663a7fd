/* The control device (devices/ctl_abi.h): how our guests talk to the VMM from CPL0 or CPL3. */
#ifndef DEVICES_CTL_H
#define DEVICES_CTL_H

#include <pthread.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/memory.h"

struct ctl_host {
	void (*exit)(void *opaque, int status);
	void (*log)(void *opaque, const char *text, size_t len);
	void (*report)(void *opaque, uint64_t value);
	/*
	 * The guest wrote count to FORK. Runs on the writing vCPU's thread with no
	 * device lock held; it sets the result with ctl_set_fork_result().
	 */
	void (*fork)(void *opaque, uint64_t count);
	/* The guest wrote SNAPSHOT (value: see ctl_abi.h) / RESET: same thread rules as fork. */
	void (*mark)(void *opaque, uint64_t value);
	void (*reset)(void *opaque);
	/* The guest wrote FUZZ_DONE / FUZZ_CRASH (value): same thread rules as fork. */
	void (*fuzz_done)(void *opaque);
	void (*fuzz_crash)(void *opaque, uint64_t value);
	void *opaque;
};

/* Where a fuzzing harness finds its input and coverage map (0: none). */
struct ctl_fuzz_info {
	uint64_t input_gpa, input_max, map_gpa, map_size;
};

struct ctl_dev {
	pthread_mutex_t lock;
	const struct guest_mem *mem;  /* log messages are read through gpa_ptr() */
	struct ctl_host host;
	uint64_t clone_id, generation, child_index;
	uint64_t ncpus;
	uint64_t fork_result, fork_first_id;
	/* Host-side, never part of a saved state: they must survive a reset. */
	uint64_t resets, mark_result;
	uint64_t bad_accesses;        /* wrong size, misaligned, unknown offset, bad GPA */
	struct ctl_fuzz_info fuzz;    /* what FUZZ_* read; set by vm-fork fuzz */
};

/* The guest-visible identity and fork registers: what a fork or snapshot carries. */
struct ctl_state {
	uint64_t clone_id, generation, child_index, fork_result, fork_first_id;
};

void ctl_save(struct ctl_dev *ctl, struct ctl_state *st);
void ctl_restore(struct ctl_dev *ctl, const struct ctl_state *st);
void ctl_set_fork_result(struct ctl_dev *ctl, int64_t result, uint64_t first_id);
void ctl_set_mark_result(struct ctl_dev *ctl, int64_t result);
/* The GENERATION and CHILD_INDEX the guest reads. */
void ctl_identity(struct ctl_dev *ctl, uint64_t *generation, uint64_t *child_index);
void ctl_set_fuzz(struct ctl_dev *ctl, const struct ctl_fuzz_info *info);
/* Count a reset; returns the count after it. */
uint64_t ctl_count_reset(struct ctl_dev *ctl);
/* Count an access the guest got wrong (size, alignment, offset, a GPA outside its RAM). */
void ctl_count_bad(struct ctl_dev *ctl);

void ctl_init(struct ctl_dev *ctl, const struct guest_mem *mem, const struct ctl_host *host,
	      uint64_t ncpus);
void ctl_destroy(struct ctl_dev *ctl);

extern const struct bus_dev_ops ctl_bus_ops; /* claim VMFORK_CTL_SIZE bytes of MMIO */

#endif
