#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/fork.h"
#include "fork/procclones.h"
#include "fork/procfork.h"
#include "fork/shells.h"
#include "fork/snapdir.h"
#include "fork/vmm.h"
#include "state/state.h"
#include "vmm/vm.h"

void vmm_init_without_kvm(struct vmm *vmm)
{
	memset(vmm, 0, sizeof(*vmm));
	pthread_mutex_init(&vmm->lock, NULL);
	pthread_cond_init(&vmm->changed, NULL);
	vmm->msr_probe_vm_fd = -1;
	vmm->kvm.fd = -1;
	vmm_limits_default(&vmm->limits);
}

int vmm_init(struct vmm *vmm, const char *kvm_path)
{
	vmm_init_without_kvm(vmm);
	return kvm_host_open(&vmm->kvm, kvm_path);
}

/*
 * Probed at the first capture, not by every VMM process (~1 ms here); the
 * scratch VM stays until vmm_destroy(), so the first fork does not wait for
 * its teardown.
 */
const struct msr_list *vmm_msr_list(struct vmm *vmm)
{
	struct msr_list *l;

	pthread_mutex_lock(&vmm->lock);
	if (!vmm->msrs) {
		l = calloc(1, sizeof(*l));
		if (l && msr_list_init(l, &vmm->kvm, &vmm->msr_probe_vm_fd) < 0) {
			free(l);
			l = NULL;
		}
		vmm->msrs = l;
	}
	l = vmm->msrs;
	pthread_mutex_unlock(&vmm->lock);
	return l;
}

struct proc_clone_table *vmm_proc_clones(struct vmm *vmm)
{
	struct proc_clone_table *t;

	pthread_mutex_lock(&vmm->lock);
	if (!vmm->proc_clones && proc_clones_create(&vmm->proc_clones) < 0)
		vmm->proc_clones = NULL;
	t = vmm->proc_clones;
	pthread_mutex_unlock(&vmm->lock);
	return t;
}

void vmm_destroy(struct vmm *vmm)
{
	for (unsigned i = 0; i < vmm->nvms; i++)
		vm_request_stop(vmm->vms[i], VM_STOP_REQUESTED, 0);
	for (unsigned i = 0; i < vmm->nvms; i++) {
		vm_wait(vmm->vms[i]);
		vm_destroy(vmm->vms[i]);
	}
	free(vmm->vms);
	free(vmm->msrs);
	if (vmm->msr_probe_vm_fd >= 0)
		close(vmm->msr_probe_vm_fd);
	for (unsigned i = 0; i < VMM_MAX_JOBS; i++)
		if (vmm->jobs[i])
			snapshot_job_free(vmm->jobs[i]);
	shell_pool_destroy(vmm->shells);
	proc_pool_destroy(vmm->procs);
	proc_clones_put(vmm->proc_clones);
	kvm_host_close(&vmm->kvm);
	pthread_cond_destroy(&vmm->changed);
	pthread_mutex_destroy(&vmm->lock);
	memset(vmm, 0, sizeof(*vmm));
	vmm->msr_probe_vm_fd = -1;
}

static int grow(struct vmm *vmm)
{
	unsigned cap = vmm->cap ? vmm->cap * 2 : 16;
	struct vm **vms = realloc(vmm->vms, cap * sizeof(*vms));

	if (!vms)
		return -ENOMEM;
	vmm->vms = vms;
	vmm->cap = cap;
	return 0;
}

int vmm_add(struct vmm *vmm, struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vmm->lock);
	ret = vmm_room_locked(vmm, 1);
	if (!ret && vmm->nvms == vmm->cap)
		ret = grow(vmm);
	if (!ret) {
		if (vm->id == VM_ID_NONE)
			vm->id = vm->parent_id = vmm->next_id++;
		vm->vmm = vmm;
		vm_attach_fork_engine(vm);
		vm->refs = 1; /* the table's */
		vmm->vms[vmm->nvms++] = vm;
		pthread_cond_broadcast(&vmm->changed);
	}
	pthread_mutex_unlock(&vmm->lock);
	if (ret == -EDQUOT)
		vmm_note_refused(vmm, "max_vms");
	return ret;
}

uint64_t vmm_alloc_ids(struct vmm *vmm, unsigned n)
{
	uint64_t first;

	pthread_mutex_lock(&vmm->lock);
	first = vmm->next_id;
	vmm->next_id += n;
	pthread_mutex_unlock(&vmm->lock);
	return first;
}

static int find_locked(struct vmm *vmm, uint64_t id)
{
	for (unsigned i = 0; i < vmm->nvms; i++)
		if (vmm->vms[i]->id == id)
			return (int)i;
	return -1;
}

struct vm *vmm_get(struct vmm *vmm, uint64_t id)
{
	struct vm *vm = NULL;
	int i;

	pthread_mutex_lock(&vmm->lock);
	i = find_locked(vmm, id);
	if (i >= 0) {
		vm = vmm->vms[i];
		vm->refs++;
	}
	pthread_mutex_unlock(&vmm->lock);
	return vm;
}

void vmm_ref(struct vmm *vmm, struct vm *vm)
{
	pthread_mutex_lock(&vmm->lock);
	vm->refs++;
	pthread_mutex_unlock(&vmm->lock);
}

static void release(struct vm *vm)
{
	vm_request_stop(vm, VM_STOP_REQUESTED, 0);
	vm_wait(vm);
	vm_destroy(vm);
}

void vmm_put(struct vmm *vmm, struct vm *vm)
{
	bool last;

	pthread_mutex_lock(&vmm->lock);
	last = --vm->refs == 0;
	pthread_mutex_unlock(&vmm->lock);
	if (last)
		release(vm);
}

int vmm_remove(struct vmm *vmm, uint64_t id)
{
	struct vm *vm;
	int i;

	pthread_mutex_lock(&vmm->lock);
	i = find_locked(vmm, id);
	if (i < 0) {
		pthread_mutex_unlock(&vmm->lock);
		return -ENOENT;
	}
	vm = vmm->vms[i];
	vmm->vms[i] = vmm->vms[--vmm->nvms];
	pthread_cond_broadcast(&vmm->changed);
	pthread_mutex_unlock(&vmm->lock);
	vm_request_stop(vm, VM_STOP_REQUESTED, 0);
	vmm_put(vmm, vm);
	return 0;
}

unsigned vmm_list(struct vmm *vmm, uint64_t *ids, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&vmm->lock);
	n = vmm->nvms;
	for (unsigned i = 0; i < n && i < max; i++)
		ids[i] = vmm->vms[i]->id;
	pthread_mutex_unlock(&vmm->lock);
	return n;
}

static bool all_stopped_locked(struct vmm *vmm)
{
	for (unsigned i = 0; i < vmm->nvms; i++)
		if (!vm_stopping(vmm->vms[i]))
			return false;
	return true;
}

bool vmm_wait_all_stopped(struct vmm *vmm, unsigned timeout_ms)
{
	struct timespec deadline = realtime_after_ms(timeout_ms);
	bool done;

	pthread_mutex_lock(&vmm->lock);
	while (!(done = all_stopped_locked(vmm))) {
		if (!timeout_ms)
			pthread_cond_wait(&vmm->changed, &vmm->lock);
		else if (pthread_cond_timedwait(&vmm->changed, &vmm->lock, &deadline))
			break;
	}
	done = all_stopped_locked(vmm);
	pthread_mutex_unlock(&vmm->lock);
	return done;
}

/* A VM in this registry stopped: wake vmm_wait_all_stopped(). */
void vmm_notify(struct vmm *vmm)
{
	pthread_mutex_lock(&vmm->lock);
	pthread_cond_broadcast(&vmm->changed);
	pthread_mutex_unlock(&vmm->lock);
}
unsigned vmm_add_job(struct vmm *vmm, struct snapshot_job *job)
{
	unsigned id = 0;

	pthread_mutex_lock(&vmm->lock);
	for (unsigned i = 0; i < VMM_MAX_JOBS && !id; i++) {
		struct snapshot_progress p = { .done = true };

		if (vmm->jobs[i])
			snapshot_job_progress(vmm->jobs[i], &p);
		if (!p.done)
			continue;
		snapshot_job_free(vmm->jobs[i]); /* a finished job makes room */
		vmm->jobs[i] = job;
		id = i + 1;
	}
	pthread_mutex_unlock(&vmm->lock);
	return id;
}

struct snapshot_job *vmm_get_job(struct vmm *vmm, unsigned id)
{
	struct snapshot_job *job = NULL;

	pthread_mutex_lock(&vmm->lock);
	if (id >= 1 && id <= VMM_MAX_JOBS)
		job = vmm->jobs[id - 1];
	pthread_mutex_unlock(&vmm->lock);
	return job;
}

