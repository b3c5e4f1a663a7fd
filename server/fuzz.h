/*
 * vm-fork fuzz's engine: one VM, reset to its mark between inputs, driven by
 * afl-fuzz through the forkserver protocol (server/afl_forkserver.h), or run
 * on one input alone (a replay).
 *
 * The guest marks its start (SNAPSHOT) once it is ready; from then on every
 * run goes: the next input is loaded into the input region, the vCPU runs on
 * from the mark, the guest ends the run (FUZZ_DONE, FUZZ_CRASH, or a fault,
 * exit or triple fault that would end the VM), the result goes to afl-fuzz,
 * and the VM is reset to the mark. All of it happens on the vCPU's own thread
 * (a run costs no thread switch), except a hang: a watcher thread sees
 * afl-fuzz kill the run's pid, or a replay's time budget pass, kicks the vCPU
 * out of the guest and ends the run.
 *
 * The pid afl-fuzz is told, and kills on its timeout, is a sacrificial helper
 * process (vm-fork fuzz-helper) that only waits: killing it ends a run, never
 * the VMM. The watcher replaces it after each kill.
 */
#ifndef SERVER_FUZZ_H
#define SERVER_FUZZ_H

#include <stdbool.h>
#include <stdint.h>

#include "server/afl_forkserver.h"
#include "vmm/vm.h"

#define FUZZ_DEFAULT_MAP_SIZE   (1u << 16)
#define FUZZ_DEFAULT_INPUT_MAX  (1u << 20)

struct fuzz_config {
	bool afl;                 /* speak the forkserver protocol on fds 198/199 */
	const char *input_path;   /* without shared-memory input: the file (afl's @@); NULL: stdin */
	uint32_t map_size;        /* coverage map bytes: a power of 2, 64 .. 8 MiB */
	bool coverage;            /* false: the guest gets no map (a baseline without feedback) */
	uint64_t input_max;       /* bytes of input a run gets at most (longer is cut) */
	uint64_t timeout_ns;      /* a replay's time budget per run (0: none); afl-fuzz has its -t */
	uint64_t runs;            /* a replay: how many times to run its input (>= 1) */
	const char *helper_exe;   /* the program the helper runs (vm-fork), argv[1] "fuzz-helper" */
};

enum fuzz_outcome {
	FUZZ_OK,        /* FUZZ_DONE */
	FUZZ_EXITED,    /* the guest exited (EXIT), status in code */
	FUZZ_CRASH,     /* a crash: signal says its class */
	FUZZ_HANG,      /* over its time budget (a replay's), or killed by afl-fuzz */
};

struct fuzz_run_result {
	enum fuzz_outcome outcome;
	int signal;               /* FUZZ_CRASH: SIGSEGV, SIGILL, ... (fuzz_crash_signal()) */
	int code;                 /* FUZZ_EXITED: the exit status; FUZZ_CRASH: the CRASH value's low bits */
	char what[96];            /* in words: "#PF page fault", "triple fault", "crash report 0x..." */
};

struct fuzz_stats {
	uint64_t runs, crashes, hangs, exits;
	uint64_t reset_ns_total;  /* time spent resetting the VM */
	uint64_t pages_reset;     /* pages copied back, over all resets */
};

struct fuzz_session;

/*
 * Prepare vm (created and booted, not started) for fuzzing: map the input
 * region and the coverage map (afl-fuzz's shared memory under afl-fuzz),
 * install the hooks, start the helper and the watcher. Then start the VM.
 * The hello to afl-fuzz waits for the guest's mark: afl-fuzz gives a hello
 * AFL_FORKSRV_INIT_TMOUT (a boot fits), but times the first run from its
 * command. The VM runs until afl-fuzz goes away, or the replay's runs are
 * done, or the guest stops before it marked.
 */
int fuzz_session_start(struct fuzz_session **out, struct vm *vm, const struct fuzz_config *cfg);
/* The last run's result (a replay's), and the counts. */
void fuzz_session_result(struct fuzz_session *s, struct fuzz_run_result *last,
			 struct fuzz_stats *stats);
/* Whether the guest marked its start (else it stopped before it could be fuzzed). */
bool fuzz_session_marked(struct fuzz_session *s);
/* After the VM stopped: stop the watcher and the helper, unmap, free. */
void fuzz_session_end(struct fuzz_session *s);

/* A run's result from the guest's FUZZ_CRASH value, or from how it would have ended the VM. */
void fuzz_crash_result(struct fuzz_run_result *r, uint64_t value);
void fuzz_ending_result(struct fuzz_run_result *r, enum vm_stop_reason reason, int status);
/* The wait status afl-fuzz is told for a run's result (a signal for a crash). */
int fuzz_wait_status(const struct fuzz_run_result *r);
/* The helper's main (vm-fork fuzz-helper): wait until killed, or until its parent is gone. */
int fuzz_helper_main(void);

#endif
