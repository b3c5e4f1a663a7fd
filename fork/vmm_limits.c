/*
 * A VMM's limits (struct vmm_limits in fork/vmm.h): the VMs it holds, the
 * children its guests ask for, per second and in all, the clones it runs in
 * processes of their own; and stopping every VM at once. A guest may write
 * FORK as often as it likes: each request costs a check under the registry's
 * lock, not a VM.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/procclones.h"
#include "fork/vmm.h"
#include "vmm/vm.h"

#define NS_PER_S 1000000000ULL

void vmm_limits_default(struct vmm_limits *l)
{
	*l = (struct vmm_limits){
		.max_vms = VMM_DEFAULT_MAX_VMS,
		.guest_forks_per_s = VMM_DEFAULT_GUEST_FORKS_PER_S,
		.max_guest_forks = VMM_DEFAULT_MAX_GUEST_FORKS,
		.max_clone_procs = VMM_DEFAULT_MAX_CLONE_PROCS,
	};
}

void vmm_set_limits(struct vmm *vmm, const struct vmm_limits *l)
{
	pthread_mutex_lock(&vmm->lock);
	vmm->limits = *l;
	pthread_mutex_unlock(&vmm->lock);
}

struct vmm_limits vmm_get_limits(struct vmm *vmm)
{
	struct vmm_limits l;

	pthread_mutex_lock(&vmm->lock);
	l = vmm->limits;
	pthread_mutex_unlock(&vmm->lock);
	return l;
}

struct vmm_usage vmm_get_usage(struct vmm *vmm)
{
	struct vmm_usage u;

	pthread_mutex_lock(&vmm->lock);
	u.vms = vmm->nvms;
	u.guest_forks = vmm->guest_forks;
	pthread_mutex_unlock(&vmm->lock);
	u.refused = __atomic_load_n(&vmm->refused, __ATOMIC_RELAXED);
	return u;
}

void vmm_note_refused(struct vmm *vmm, const char *what)
{
	uint64_t n = __atomic_add_fetch(&vmm->refused, 1, __ATOMIC_RELAXED);

	/* A guest forking in a loop is refused thousands of times: say so at powers of two. */
	if (!(n & (n - 1)))
		pr_warn("limit: %s refused a request (%llu refused so far)", what,
			(unsigned long long)n);
}

int vmm_room_locked(struct vmm *vmm, unsigned n)
{
	if (vmm->stopping)
		return -ESHUTDOWN;
	if (vmm->limits.max_vms && vmm->nvms + (uint64_t)n > vmm->limits.max_vms)
		return -EDQUOT;
	return 0;
}

int vmm_room_for(struct vmm *vmm, unsigned n)
{
	int ret;

	pthread_mutex_lock(&vmm->lock);
	ret = vmm_room_locked(vmm, n);
	pthread_mutex_unlock(&vmm->lock);
	if (ret == -EDQUOT)
		vmm_note_refused(vmm, "max_vms");
	return ret;
}

/* The per-second window: a fixed second from the first request in it. */
static int charge_rate_locked(struct vmm *vmm, unsigned n)
{
	uint64_t now = now_ns();

	if (!vmm->limits.guest_forks_per_s)
		return 0;
	if (now - vmm->fork_window_ns >= NS_PER_S) {
		vmm->fork_window_ns = now;
		vmm->window_forks = 0;
	}
	if (vmm->window_forks + (uint64_t)n > vmm->limits.guest_forks_per_s)
		return -EAGAIN;
	vmm->window_forks += n;
	return 0;
}

int vmm_charge_guest_forks(struct vmm *vmm, unsigned n)
{
	const char *what = "max_vms";
	int ret;

	pthread_mutex_lock(&vmm->lock);
	ret = vmm_room_locked(vmm, n);
	if (!ret && vmm->limits.max_guest_forks &&
	    vmm->guest_forks + n > vmm->limits.max_guest_forks) {
		ret = -EDQUOT;
		what = "max_guest_forks";
	}
	if (!ret) {
		ret = charge_rate_locked(vmm, n);
		what = "guest_forks_per_s";
	}
	if (!ret)
		vmm->guest_forks += n;
	pthread_mutex_unlock(&vmm->lock);
	if (ret == -EDQUOT || ret == -EAGAIN)
		vmm_note_refused(vmm, what);
	return ret;
}

int vmm_room_for_procs(struct vmm *vmm, unsigned n)
{
	struct vmm_limits l = vmm_get_limits(vmm);
	struct proc_clone_table *t = vmm_proc_clones(vmm);
	unsigned running = t ? proc_clones_running(t) : 0;

	if (!l.max_clone_procs || running + (uint64_t)n <= l.max_clone_procs)
		return 0;
	vmm_note_refused(vmm, "max_clone_procs");
	return -EDQUOT;
}

/* Up to max registered VMs not yet stopping, each referenced; returns how many. */
static unsigned take_running(struct vmm *vmm, struct vm **out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&vmm->lock);
	vmm->stopping = true;
	for (unsigned i = 0; i < vmm->nvms && n < max; i++) {
		if (vm_stopping(vmm->vms[i]))
			continue;
		out[n] = vmm->vms[i];
		out[n++]->refs++;
	}
	pthread_mutex_unlock(&vmm->lock);
	return n;
}

void vmm_stop_all(struct vmm *vmm, int status)
{
	struct vm *batch[256];
	unsigned n;

	/* In batches, without the lock: stopping a VM notifies the registry, which takes it. */
	while ((n = take_running(vmm, batch, 256)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			vm_request_stop(batch[i], VM_STOP_REQUESTED, status);
			vmm_put(vmm, batch[i]);
		}
	}
}
