/* A clone worker's job handling (fork/worker.c), for the process that runs one. */
#ifndef FORK_WORKER_H
#define FORK_WORKER_H

#include <stdbool.h>

#include "fork/procmsg.h"
#include "fork/vmm.h"

/* The worker could not make its shell or run its clone (KVM or the host failed). */
#define PROCMSG_EXIT_FAILED 1

struct clone_worker {
	struct vmm vmm;
	bool have_vmm;
	bool running;                   /* the clone is registered in vmm (atomic) */
	struct procmsg_shape shape;
	struct vm *vm;                  /* the shell, then the clone */
	int sock;                       /* the VMM's socket; -1 once the job is answered */
};

/*
 * Serve one job on w->sock (set by the caller; w otherwise zeroed): returns
 * the process's exit status, the clone's once it ran, 0 when the VMM let the
 * worker go, PROCMSG_EXIT_REFUSED or PROCMSG_EXIT_FAILED.
 */
int clone_worker_serve(struct clone_worker *w);
/* A stop signal: false when no clone runs yet (nothing to save), else it is stopped with status. */
bool clone_worker_stop(struct clone_worker *w, int status);
/* Free what the worker holds. */
void clone_worker_fini(struct clone_worker *w);

#endif
