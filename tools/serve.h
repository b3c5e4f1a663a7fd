/* What `vm-fork run` and `vm-fork restore` share: serving VMs until all have stopped. */
#ifndef TOOLS_SERVE_H
#define TOOLS_SERVE_H

#include <pthread.h>

struct vm;
struct vmm;

#include "fork/vmm.h"

struct serve_options {
	const char *api_path;       /* serve the control API there, or NULL */
	const char *clone_console;  /* clones' console spec, or NULL (see below) */
	unsigned shells;            /* warm shells to keep, shaped like vms[0] */
	unsigned workers;           /* warm clone-worker processes, likewise */
	struct vmm_limits limits;   /* from vmm_limits_default() and the options below */
};

/* The limit options `run` and `restore` share: getopt_long entries and their help. */
enum { SERVE_OPT_MAX_VMS = 0x100, SERVE_OPT_FORK_RATE, SERVE_OPT_MAX_FORKS, SERVE_OPT_MAX_PROCS };
#define SERVE_LIMIT_OPTIONS \
	{ "max-vms", required_argument, NULL, SERVE_OPT_MAX_VMS }, \
	{ "guest-fork-rate", required_argument, NULL, SERVE_OPT_FORK_RATE }, \
	{ "max-guest-forks", required_argument, NULL, SERVE_OPT_MAX_FORKS }, \
	{ "max-clone-procs", required_argument, NULL, SERVE_OPT_MAX_PROCS }
extern const char serve_limits_help[];
/*
 * If opt is one of them, parse arg into l: 0, or CLI_EXIT_USAGE after saying
 * why (cmd names the command); 1 when opt is not a limit option.
 */
int serve_parse_limit(const char *cmd, int opt, const char *arg, struct vmm_limits *l);

/* Raise the fd limit and block the stop signals (before any thread starts). */
void serve_prepare_process(void);
/*
 * For the one thread that takes the stop signals: wait for one and return it,
 * or 0 once serve_signal_thread_end() asked the thread to end (a signal of
 * its own, so the thread returns normally: pthread_cancel() would unwind it
 * past code that expects to return, which AddressSanitizer, for one, reports).
 */
int serve_wait_stop_signal(void);
void serve_signal_thread_end(pthread_t thread);
/*
 * Start the API and shells, start or resume vms[0..n), and wait until every
 * VM of vmm stopped (SIGINT, SIGTERM and SIGHUP stop them all). Returns the
 * exit status of vms[0], or CLI_EXIT_ERROR.
 */
/*
 * How this VMM starts clone workers (fork/procfork.h): its own binary as
 * `vm-fork clone-worker`, at its log level.
 */
const char *const *serve_worker_cmd(void);
int serve_until_stopped(struct vmm *vmm, struct vm **vms, unsigned n, struct serve_options *o);

#endif
