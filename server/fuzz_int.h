/* vm-fork fuzz's engine, inside (server/fuzz.h): shared by fuzz.c, fuzz_io.c and fuzz_watch.c. */
#ifndef SERVER_FUZZ_INT_H
#define SERVER_FUZZ_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "devices/ctl_abi.h"
#include "server/fuzz.h"
#include "vmm/vm.h"

struct fuzz_session {
	struct vm *vm;
	struct fuzz_config cfg;
	struct vm_guest_ops ops;          /* the fork engine's, with the fuzzing hooks */
	struct afl_forkserver fs;

	/* The regions (fuzz_io.c). */
	uint8_t *map;                     /* the coverage map: afl-fuzz's or ours; NULL: none */
	bool map_is_afl;                  /* shmat()ed: shmdt() it */
	struct vmfork_fuzz_input *input;  /* the guest's input region, read-only to it */
	uint64_t input_bytes;             /* its mapping's size */
	const uint8_t *afl_input;         /* afl-fuzz's shared-memory input (u32 len, data), or NULL */
	uint64_t afl_input_max;           /* the data bytes its segment holds */

	/* The run, and the helper whose pid afl-fuzz kills (fuzz_watch.c). */
	pthread_mutex_t lock;
	pthread_cond_t changed;           /* helper_gen moved */
	bool marked, run_active, stopping;
	uint64_t run_seq, run_start_ns;
	pid_t helper;
	int helper_pidfd;
	uint64_t helper_gen, run_helper_gen;
	int wake_fd;                      /* eventfd: the watcher looks again */
	pthread_t watcher;
	bool watching;

	struct fuzz_run_result last, hung;
	struct fuzz_stats stats;
};

/* fuzz_io.c: map the regions, tell the control device; unmap. */
int fuzz_map_regions(struct fuzz_session *s);
void fuzz_unmap_regions(struct fuzz_session *s);
/* afl-fuzz agreed to give inputs in its shared memory: attach it. */
int fuzz_attach_afl_input(struct fuzz_session *s);
/* Put the next input into the input region. 0 or -errno. */
int fuzz_load_input(struct fuzz_session *s);

/* fuzz_watch.c */
int fuzz_watch_start(struct fuzz_session *s);
void fuzz_watch_stop(struct fuzz_session *s);
void fuzz_watch_poke(struct fuzz_session *s);
/* The pid to report for this run; with was_killed, a new helper's (waits for it). */
pid_t fuzz_run_helper(struct fuzz_session *s, bool was_killed);

/*
 * fuzz.c, for the watcher: end run seq as a hang (what: why), if it is still
 * on: the vCPU is kicked out of the guest, the VM reset, the next run begun.
 */
void fuzz_end_hang(struct fuzz_session *s, uint64_t seq, const char *what);

#endif
