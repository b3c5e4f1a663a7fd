/*
 * A clone worker, the process side of a process fork (fork/procfork.h): it
 * receives a shape and makes a warm shell of it, then waits for ONE job: the
 * parent's frozen base and state file, the clone's identity and console
 * (fork/procmsg.h). It loads the clone (vm_become_clone()), answers,
 * sandboxes itself (fork/sandbox.h) and runs it until it stops. Whatever it
 * receives is checked; anything wrong and it refuses the job, having touched
 * nothing but itself. `vm-fork clone-worker` (tools/cmd_worker.c) is the
 * process around it: arguments, fds, signals.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "fork/clone.h"
#include "fork/procmsg.h"
#include "fork/sandbox.h"
#include "fork/vmm.h"
#include "fork/worker.h"
#include "state/vm_snapshot.h"
#include "vmm/vm.h"

/* ---- Before the job: the shell ---- */

static int make_shell(struct clone_worker *w)
{
	const struct procmsg_shape *s = &w->shape;
	int ret = procmsg_check_shape(s);

	if (ret < 0)
		return ret;
	ret = vmm_init(&w->vmm, NULL);
	if (ret < 0)
		return ret;
	w->have_vmm = true;
	ret = vm_create_shell(&w->vm, &w->vmm.kvm, s->mem_size, s->ncpus, &s->mask, NULL);
	if (!ret)
		ret = vm_start_paused(w->vm);
	if (!ret)
		vm_wait_parked(w->vm);
	return ret;
}

/* ---- The job ---- */

/*
 * A pool's worker warms up at SCHED_BATCH (fork/procpool.c), and so does
 * every thread it makes. Waiting for its job, and running the clone, it is
 * back at the normal policy: a BATCH thread woken by the job would wait for
 * the CPU's current thread to use up its slice. (BATCH to OTHER at the same
 * nice value needs no privilege.)
 */
static void leave_background(void)
{
	struct sched_param normal = { 0 };
	struct dirent *e;
	DIR *d;

	if (sched_getscheduler(0) != SCHED_BATCH)
		return;
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			sched_setscheduler(atoi(e->d_name), SCHED_OTHER, &normal);
	if (d)
		closedir(d);
}

static int map_base(struct vm *vm, int fd)
{
	struct guest_mem base = {
		.fd = fd, .size = vm->mem.size, .frozen = true,
		.is_memfd = fcntl(fd, F_GET_SEALS) >= 0,
	};

	return guest_mem_map_base(&vm->mem, &base); /* takes its own reference on fd */
}

/* The clone's own pages, from the state file the job brought. */
struct job_pages {
	int state_fd;
	const struct mem_ranges *ranges;
	uint64_t off;
};

static int put_job_pages(struct vm *vm, void *arg)
{
	const struct job_pages *p = arg;

	return procmsg_state_copy_pages(p->state_fd, p->ranges, p->off, &vm->mem);
}

static int load_state(struct vm *vm, const struct procmsg_job *job, int state_fd,
		      struct vm_snapshot *snap)
{
	struct mem_ranges ranges;
	struct job_pages jp = { .state_fd = state_fd, .ranges = &ranges };
	struct clone_pages pages = { put_job_pages, &jp };
	struct device_config devices = { { 0 } };
	struct clone_identity id = {
		.id = job->clone_id, .parent_id = job->parent_id, .generation = job->generation,
		.child_index = job->child_index, .devices = &devices,
	};
	int ret = procmsg_state_read(state_fd, vm->mem.size, vm->ncpus, snap, &ranges, &jp.off);

	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < DEVICE_MAX; i++)
		devices.args[i] = job->devices[i][0] ? job->devices[i] : NULL;
	/* The parent computed it from this very state: anything else is a mix-up. */
	if (job->generation != snap->ctl.generation + 1)
		ret = -EINVAL;
	if (!ret)
		ret = vm_become_clone(vm, snap, false, &pages, &id, job->console);
	mem_ranges_free(&ranges);
	return ret;
}

static int load_job(struct clone_worker *w, const struct procmsg_job *job, const int *fds)
{
	struct vm_snapshot snap = { 0 };
	int ret = procmsg_check_job(job);

	if (!ret)
		ret = procmsg_check_base(fds[PROCMSG_JOB_BASE_FD], w->shape.mem_size);
	if (!ret)
		ret = map_base(w->vm, fds[PROCMSG_JOB_BASE_FD]);
	if (!ret)
		ret = load_state(w->vm, job, fds[PROCMSG_JOB_STATE_FD], &snap);
	vm_snapshot_free(&snap);
	return ret;
}

/* Register the loaded clone: guest-requested forks need its vmm. */
static int register_clone(struct clone_worker *w)
{
	struct vm *vm = w->vm;
	int ret;

	/* Grandchildren forked in here get ids after the clone's, unique in this process. */
	w->vmm.next_id = vm->id + 1;
	ret = vmm_add(&w->vmm, vm);
	if (ret < 0)
		return ret;
	w->vm = NULL; /* the vmm owns it now */
	__atomic_store_n(&w->running, true, __ATOMIC_RELEASE);
	return 0;
}

/* Let the clone go and wait until it (and whatever it forked) stopped: its status. */
static int run_clone(struct clone_worker *w, uint64_t id)
{
	struct vm *vm = vmm_get(&w->vmm, id);
	int status = PROCMSG_EXIT_FAILED;

	if (!vm)
		return status;
	/* Fails only when a signal stopped it first: it then ends with that status. */
	vm_resume(vm);
	vmm_wait_all_stopped(&w->vmm, 0);
	status = vm_exit_code(vm) & 0xff;
	vmm_put(&w->vmm, vm);
	return status;
}

/* Refused: say why; PROCMSG_EXIT_REFUSED, or PROCMSG_EXIT_FAILED when KVM or the host failed. */
static int refuse(struct clone_worker *w, enum procmsg_type type, int err)
{
	const char *what = type == PROCMSG_READY ? "its shape" : "its job";

	procmsg_send_status(w->sock, type, err);
	switch (-err) {
	case EINVAL: case EBADMSG: case EPROTO: case EPROTONOSUPPORT: case EMSGSIZE:
		pr_err("clone worker %d: refused %s: %s", (int)getpid(), what, strerror(-err));
		return PROCMSG_EXIT_REFUSED;
	}
	pr_err("clone worker %d: failed on %s: %s", (int)getpid(), what, strerror(-err));
	return PROCMSG_EXIT_FAILED;
}

int clone_worker_serve(struct clone_worker *w)
{
	int fds[PROCMSG_JOB_NFDS], ret;
	struct procmsg_job job;
	uint64_t id;

	ret = procmsg_recv(w->sock, &w->shape, sizeof(w->shape), PROCMSG_SHAPE, NULL, 0, -1);
	if (ret == -ECONNRESET)
		return 0; /* the VMM let us go before giving us anything */
	if (!ret)
		ret = make_shell(w);
	if (ret < 0)
		return refuse(w, PROCMSG_READY, ret);
	leave_background(); /* the job must be taken at once */
	procmsg_send_status(w->sock, PROCMSG_READY, 0);
	ret = procmsg_recv(w->sock, &job, sizeof(job), PROCMSG_JOB, fds, PROCMSG_JOB_NFDS, -1);
	if (ret == -ECONNRESET)
		return 0; /* a warm worker the pool no longer needs */
	if (ret < 0)
		return refuse(w, PROCMSG_REPLY, ret);
	ret = load_job(w, &job, fds);
	close(fds[0]);
	close(fds[1]);
	id = w->vm->id;
	if (!ret)
		ret = register_clone(w);
	if (ret < 0)
		return refuse(w, PROCMSG_REPLY, ret);
	/* Answered before the clone runs, so that it does not take the CPU from the answer. */
	procmsg_send_status(w->sock, PROCMSG_REPLY, 0);
	close(w->sock);
	w->sock = -1;
	/* Set up: from here the clone runs, and the worker may do nothing else. */
	if (sandbox_clone_worker() < 0)
		return PROCMSG_EXIT_FAILED;
	return run_clone(w, id);
}

bool clone_worker_stop(struct clone_worker *w, int status)
{
	if (!__atomic_load_n(&w->running, __ATOMIC_ACQUIRE))
		return false;
	vmm_stop_all(&w->vmm, status);
	return true;
}

void clone_worker_fini(struct clone_worker *w)
{
	if (w->sock >= 0)
		close(w->sock);
	vm_destroy(w->vm);
	if (w->have_vmm)
		vmm_destroy(&w->vmm);
}
