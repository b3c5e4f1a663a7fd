#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/clone.h"
#include "fork/fork.h"
#include "fork/procfork.h"
#include "fork/procmsg.h"
#include "fork/procpool.h"
#include "fork/vmm.h"
#include "vmm/vm.h"

/* ---- The fork ---- */

/* What every clone of one fork gets. */
struct proc_plan {
	int base_fd, state_fd;
	uint64_t generation;
	uint64_t first_id;
	const struct device_config *devices; /* each clone's own backends, or NULL */
};

/* A state file cannot carry what only this process has (a disk's layers): say so. */
static int refuse_local_devices(const struct vm_snapshot *snap)
{
	int i = vm_snapshot_local_device(snap);

	if (i < 0)
		return 0;
	pr_err("fork --processes: the VM's %s is shared by reference with its clones, which "
	       "works only inside this process: fork it without --processes",
	       device_table[i]->name);
	return -ENOTSUP;
}

/* Pause a running parent just long enough to capture it and write its state file. */
static int capture_state(struct vm *parent, struct proc_plan *plan, struct fork_stats *st)
{
	struct vm_snapshot *snap;
	struct mem_ranges *pages;
	uint64_t t0 = now_ns();
	bool was_running;
	int ret;

	vm_op_lock(parent);
	was_running = vm_run_state(parent) == VM_STATE_RUNNING;
	ret = was_running ? vm_pause_locked(parent, NULL) : 0;
	if (!ret)
		ret = fork_capture(parent, &snap, &pages, st);
	if (!ret)
		ret = refuse_local_devices(snap);
	if (!ret) {
		struct kvm_cpuid2 *cpuid = vm_cpuid(parent);

		plan->generation = snap->ctl.generation + 1;
		ret = cpuid ? procmsg_state_create(snap, cpuid, pages, &parent->mem) : -ENOMEM;
		free(cpuid);
	}
	if (ret >= 0) {
		plan->state_fd = ret;
		plan->base_fd = fcntl(parent->mem.fd, F_DUPFD_CLOEXEC, 0);
		ret = plan->base_fd < 0 ? -errno : 0;
	}
	/* The state file is complete: nothing below reads the parent any more. */
	if (was_running)
		vm_resume_locked(parent);
	st->paused_ns = now_ns() - t0;
	vm_op_unlock(parent);
	return ret;
}

int proc_clone_console(const struct vm *parent, uint64_t id, char *out, size_t size)
{
	return clone_console_spec(parent->vmm->clone_console, id, out, size);
}

static int send_job(const struct vm *parent, const struct proc_plan *plan, unsigned index,
		    struct proc_worker *w)
{
	int fds[PROCMSG_JOB_NFDS] = { plan->base_fd, plan->state_fd };
	struct procmsg_job job;
	int ret;

	memset(&job, 0, sizeof(job));
	procmsg_init(&job.hdr, PROCMSG_JOB, sizeof(job), 0);
	job.clone_id = plan->first_id + index;
	job.parent_id = parent->id;
	job.generation = plan->generation;
	job.child_index = index + 1;
	/* fork_check_devices() bounded each: the job carries it whole, "%u" and all. */
	for (unsigned i = 0; plan->devices && i < DEVICE_MAX; i++)
		if (plan->devices->args[i])
			snprintf(job.devices[i], sizeof(job.devices[i]), "%s", plan->devices->args[i]);
	ret = proc_clone_console(parent, job.clone_id, job.console, sizeof(job.console));
	if (!ret)
		ret = procmsg_send(w->sock, &job, sizeof(job), fds, PROCMSG_JOB_NFDS);
	return ret;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ns();

	return now >= deadline ? 0 : (int)((deadline - now) / 1000000);
}

/* Every worker's answer: cold ones say READY first. The first failure wins. */
static int collect_replies(struct proc_worker *w, unsigned warm, unsigned count)
{
	uint64_t deadline = now_ns() + PROC_WORKER_TIMEOUT_MS * 1000000ULL;
	int ret = 0;

	for (unsigned i = 0; !ret && i < count; i++) {
		if (i >= warm)
			ret = procmsg_recv_status(w[i].sock, PROCMSG_READY, remaining_ms(deadline));
		if (!ret)
			ret = procmsg_recv_status(w[i].sock, PROCMSG_REPLY, remaining_ms(deadline));
		if (ret < 0)
			pr_err("process fork: clone worker %d: %s", (int)w[i].pid, strerror(-ret));
	}
	return ret;
}

static int start_cold(const char *const *cmd, const struct procmsg_shape *shape,
		      struct proc_worker *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int ret = proc_worker_start(cmd, shape, &w[i]);

		if (ret < 0)
			return ret; /* the caller discards those started */
	}
	return 0;
}

/* Workers in hand: capture, send each its job, wait until every clone runs. */
static int run_jobs(const struct proc_placement *placement, struct vm *parent,
		    const struct device_config *devices, struct proc_worker *w, unsigned warm,
		    unsigned count, struct fork_stats *st, uint64_t *first_id)
{
	struct proc_plan plan = { .base_fd = -1, .state_fd = -1, .devices = devices };
	uint64_t t;
	int ret = capture_state(parent, &plan, st);

	t = now_ns();
	if (!ret)
		*first_id = plan.first_id = vmm_alloc_ids(parent->vmm, count);
	for (unsigned i = 0; !ret && i < count; i++) {
		if (placement)
			ret = placement->place(placement->ctx, w[i].pid, plan.first_id + i);
		if (!ret)
			ret = send_job(parent, &plan, i, &w[i]);
	}
	if (!ret)
		ret = collect_replies(w, warm, count);
	st->children_ns = now_ns() - t;
	if (plan.base_fd >= 0)
		close(plan.base_fd);
	if (plan.state_fd >= 0)
		close(plan.state_fd);
	return ret < 0 ? ret : 0;
}

static void hand_out(struct proc_worker *w, unsigned count, uint64_t first_id,
		     struct proc_clone *clones)
{
	for (unsigned i = 0; i < count; i++) {
		close(w[i].sock); /* the worker is on its own now */
		clones[i] = (struct proc_clone){ .pid = w[i].pid, .id = first_id + i };
	}
}

int vm_fork_to_pool_placed(struct proc_pool *pool, struct vm *parent, unsigned count,
			   const struct device_config *devices,
			   const struct proc_placement *placement, struct proc_clone *clones,
			   struct fork_stats *stats)
{
	struct fork_stats st = { 0 };
	struct procmsg_shape shape;
	struct proc_worker *w;
	uint64_t t0 = now_ns(), first_id = 0;
	unsigned warm;
	int ret;

	if (count < 1 || count > FORK_MAX_COUNT || !parent->vmm)
		return -EINVAL;
	ret = fork_check_devices(parent, devices);
	if (ret < 0)
		return ret;
	w = malloc(count * sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (unsigned i = 0; i < count; i++)
		w[i] = (struct proc_worker){ .pid = 0, .sock = -1 };
	proc_shape_of(parent, &shape);
	warm = proc_pool_take(pool, &shape, w, count);
	/* Cold workers make their shells while the parent is captured. */
	ret = start_cold(pool ? proc_pool_cmd(pool) : parent->vmm->worker_cmd, &shape, w + warm,
			 count - warm);
	if (!ret)
		ret = run_jobs(placement, parent, devices, w, warm, count, &st, &first_id);
	if (ret < 0)
		proc_workers_discard(w, count);
	else
		hand_out(w, count, first_id, clones);
	free(w);
	proc_pool_refill(pool);
	st.from_shells = ret < 0 ? 0 : warm;
	st.total_ns = now_ns() - t0;
	if (stats)
		*stats = st;
	return ret;
}

int vm_fork_to_pool_devices(struct proc_pool *pool, struct vm *parent, unsigned count,
			    const struct device_config *devices, struct proc_clone *clones,
			    struct fork_stats *st)
{
	return vm_fork_to_pool_placed(pool, parent, count, devices, NULL, clones, st);
}

int vm_fork_to_pool(struct proc_pool *pool, struct vm *parent, unsigned count,
		    struct proc_clone *clones, struct fork_stats *st)
{
	return vm_fork_to_pool_devices(pool, parent, count, NULL, clones, st);
}

int vm_fork_to_processes(struct vm *parent, unsigned count, struct proc_clone *clones,
			 struct fork_stats *st)
{
	return vm_fork_to_pool(NULL, parent, count, clones, st);
}
