/* What `vm-fork run` and `vm-fork restore` share: serving VMs until all have stopped. */
#ifndef TOOLS_SERVE_H
#define TOOLS_SERVE_H

#include <pthread.h>

struct vm;
struct vmm;

struct serve_options {
	const char *api_path;       /* serve the control API there, or NULL */
	const char *clone_console;  /* clones' console spec, or NULL (see below) */
	unsigned shells;            /* warm shells to keep, shaped like vms[0] */
	unsigned workers;           /* warm clone-worker processes, likewise */
};

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
/* Ask every VM of vmm to stop with status 128 + sig. */
void serve_stop_all(struct vmm *vmm, int sig);
/*
 * Start the API and shells, start or resume vms[0..n), and wait until every
 * VM of vmm stopped (SIGINT, SIGTERM and SIGHUP stop them all). Returns the
 * exit status of vms[0], or CLI_EXIT_ERROR.
 */
int serve_until_stopped(struct vmm *vmm, struct vm **vms, unsigned n, struct serve_options *o);

#endif
