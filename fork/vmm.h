/*
 * A VMM process: the KVM handle, every VM it runs (booted ones and their
 * clones) by id, clone-id allocation, and the warm shells forks draw on.
 * All of it is in this one struct; a process may even hold several.
 *
 * Lifetime: a VM stays registered after it stops (its state can be read)
 * until vmm_remove() or vmm_destroy(). vmm_get() returns a VM with a
 * reference held; vmm_put() drops it. A removed VM is destroyed when its last
 * reference goes.
 */
#ifndef FORK_VMM_H
#define FORK_VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/kvm.h"

struct vm;
struct vm_config;
struct shell_pool;
struct msr_list;
struct snapshot_job;
struct proc_pool;

#define VMM_MAX_JOBS 64

struct vmm {
	struct kvm_host kvm;
	pthread_mutex_t lock;       /* guards the table and the id counter */
	pthread_cond_t changed;     /* a VM was added, stopped or removed */
	struct vm **vms;
	unsigned nvms, cap;
	uint64_t next_id;           /* 0 is the first booted VM */
	uint64_t next_serial;       /* names captured fork states (fork.c) */
	struct msr_list *msrs;      /* the MSRs a fork saves on this host: vmm_msr_list() */
	int msr_probe_vm_fd;        /* the probe's scratch VM, torn down with the vmm; -1: none */
	struct shell_pool *shells;  /* NULL: forks create VMs cold */
	struct proc_pool *procs;    /* warm clone-worker processes, or NULL */
	struct proc_clone_table *proc_clones; /* clones in other processes: vmm_proc_clones() */
	const char *clone_console;  /* console spec for clones; "%u" becomes the clone id */
	/* Snapshots being (or lately) written; job id = index + 1. Guarded by lock. */
	struct snapshot_job *jobs[VMM_MAX_JOBS];
};

int vmm_init(struct vmm *vmm, const char *kvm_path);
/* A VMM without KVM: it holds no VM and can make none, but its API answers (tests without KVM). */
void vmm_init_without_kvm(struct vmm *vmm);
/* The table of this VMM's clones in other processes, made at the first call; NULL if out of memory. */
struct proc_clone_table *vmm_proc_clones(struct vmm *vmm);
/* The MSRs worth saving on this host, probed on first use; NULL when that failed. */
const struct msr_list *vmm_msr_list(struct vmm *vmm);
/* Stops and destroys every VM. */
void vmm_destroy(struct vmm *vmm);

/* Register a VM; one without an id (VM_ID_NONE, a booted VM) gets the next one. */
int vmm_add(struct vmm *vmm, struct vm *vm);
/* Reserve n consecutive ids; returns the first. */
uint64_t vmm_alloc_ids(struct vmm *vmm, unsigned n);
/* The VM with this id, referenced, or NULL. */
struct vm *vmm_get(struct vmm *vmm, uint64_t id);
void vmm_put(struct vmm *vmm, struct vm *vm);
/* Take one more reference on a VM the caller already holds. */
void vmm_ref(struct vmm *vmm, struct vm *vm);
/* Stop the VM if it runs and unregister it. -ENOENT if unknown. */
int vmm_remove(struct vmm *vmm, uint64_t id);
/* Copy up to max ids of registered VMs; returns how many are registered. */
unsigned vmm_list(struct vmm *vmm, uint64_t *ids, unsigned max);
/* Keep a snapshot job; returns its id, or 0 when every slot holds a running one. */
unsigned vmm_add_job(struct vmm *vmm, struct snapshot_job *job);
/* The job with that id, or NULL (it stays owned by the vmm). */
struct snapshot_job *vmm_get_job(struct vmm *vmm, unsigned id);
/* Called when a registered VM stops, to wake vmm_wait_all_stopped(). */
void vmm_notify(struct vmm *vmm);
/* Wait until no registered VM is running (or timeout_ms passes, 0: forever). */
bool vmm_wait_all_stopped(struct vmm *vmm, unsigned timeout_ms);

#endif
