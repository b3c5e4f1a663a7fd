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

/*
 * VMM-wide limits: what all of a VMM's guests and API clients together may
 * make it do, so that no guest can fork-bomb its host (fork/vmm_limits.c).
 * 0 means no limit. A request over one fails with -EDQUOT, or -EAGAIN for
 * the rate; a guest reads that in FORK_RESULT (docs/guest-abi.md).
 */
struct vmm_limits {
	unsigned max_vms;           /* VMs registered at once: booted, clones, restored */
	unsigned guest_forks_per_s; /* children all guests together may ask for per second */
	uint64_t max_guest_forks;   /* ... in all, over the VMM's life */
	unsigned max_clone_procs;   /* clones running in processes of their own */
};

#define VMM_DEFAULT_MAX_VMS           4096
#define VMM_DEFAULT_GUEST_FORKS_PER_S 1000
#define VMM_DEFAULT_MAX_GUEST_FORKS   0
#define VMM_DEFAULT_MAX_CLONE_PROCS   256

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
	const char *const *worker_cmd; /* how to start a clone worker (fork/procfork.h), or NULL */
	/* Snapshots being (or lately) written; job id = index + 1. Guarded by lock. */
	struct snapshot_job *jobs[VMM_MAX_JOBS];
	/* Limits and what counts against them (fork/vmm_limits.c). Guarded by lock. */
	struct vmm_limits limits;
	bool stopping;              /* vmm_stop_all() ran: no VM is added any more */
	uint64_t guest_forks;       /* children guests asked for, in all */
	uint64_t fork_window_ns;    /* start of the current second of guest forks */
	unsigned window_forks;      /* children guests asked for in it */
	uint64_t refused;           /* requests refused by a limit */
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
/* The defaults (VMM_DEFAULT_*), which vmm_init() sets. */
void vmm_limits_default(struct vmm_limits *l);
void vmm_set_limits(struct vmm *vmm, const struct vmm_limits *l);
struct vmm_limits vmm_get_limits(struct vmm *vmm);
/* What counts against them now. */
struct vmm_usage {
	unsigned vms;
	uint64_t guest_forks, refused;
};
struct vmm_usage vmm_get_usage(struct vmm *vmm);
/* Whether n more VMs may be registered: 0, -EDQUOT (max_vms), -ESHUTDOWN (stopping). */
int vmm_room_for(struct vmm *vmm, unsigned n);
/* The same with vmm->lock held (vmm_add()'s hard bound); says nothing. */
int vmm_room_locked(struct vmm *vmm, unsigned n);
/* Count n children a guest asks for: 0, -EAGAIN (the rate), -EDQUOT (in all, or max_vms). */
int vmm_charge_guest_forks(struct vmm *vmm, unsigned n);
/* Whether n more clone processes may run beside those running: 0 or -EDQUOT. */
int vmm_room_for_procs(struct vmm *vmm, unsigned n);
/* Say once in a while (1st, 2nd, 4th, ... time) that a limit refused a request. */
void vmm_note_refused(struct vmm *vmm, const char *what);
/*
 * Stop every registered VM with status, whatever their number, and refuse
 * new ones from then on (a guest forking meanwhile gets -ESHUTDOWN), so that
 * vmm_wait_all_stopped() ends. The VMM's SIGTERM.
 */
void vmm_stop_all(struct vmm *vmm, int status);

/* Called when a registered VM stops, to wake vmm_wait_all_stopped(). */
void vmm_notify(struct vmm *vmm);
/* Wait until no registered VM is running (or timeout_ms passes, 0: forever). */
bool vmm_wait_all_stopped(struct vmm *vmm, unsigned timeout_ms);

#endif
