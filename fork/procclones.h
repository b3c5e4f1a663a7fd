/*
 * What a VMM knows of the clones it placed in other processes
 * (fork/procfork.h): their ids, pids and, once they end, their status.
 * A thread per clone waits for its process; the API lists them beside the
 * VMM's own VMs and stops them by id. The table is referenced by the VMM and
 * by each waiting thread, so it outlives whichever goes first.
 */
#ifndef FORK_PROCCLONES_H
#define FORK_PROCCLONES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_clone;
struct proc_clone_table;

struct proc_clone_record {
	uint64_t id, parent_id;
	pid_t pid;
	bool running;
	int status;      /* once ended: its exit status, or 128 + the signal that killed it */
};

int proc_clones_create(struct proc_clone_table **out);
/* Drop the caller's reference (the table goes with the last one). */
void proc_clones_put(struct proc_clone_table *t);
/* Record a clone process and wait for it (reaping it) on a thread of its own. */
int proc_clones_track(struct proc_clone_table *t, const struct proc_clone *clone,
		      uint64_t parent_id);
/* The record of clone id into *out; false when there is none. */
bool proc_clones_get(struct proc_clone_table *t, uint64_t id, struct proc_clone_record *out);
/* Up to max records, in the order the clones were made; returns how many. */
unsigned proc_clones_list(struct proc_clone_table *t, struct proc_clone_record *out,
			  unsigned max);
/* How many of its clone processes still run. */
unsigned proc_clones_running(struct proc_clone_table *t);
/*
 * Send sig to the clone process with this id: 0, -ENOENT (no such clone) or
 * -ESRCH (it has ended). Never a process that is not that clone: its pid
 * stays unreaped until the table has marked it ended.
 */
int proc_clones_signal(struct proc_clone_table *t, uint64_t id, int sig);

#endif
