/* One invocation of a function in a fresh clone (server/invoke.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/memory.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_conn.h"
#include "fork/fork.h"
#include "fork/procfork.h"
#include "fork/procpool.h"
#include "fork/vmm.h"
#include "server/clone_cgroup.h"
#include "server/invoke.h"
#include "server/vsock_call.h"
#include "vmm/vm.h"

const char *invoke_vsock_path(struct vm *vm)
{
	int i = device_index(&virtio_vsock_device);

	return i >= 0 && vm_device_arg(vm, (unsigned)i) ? virtio_vsock_path(vm->devs[i]) : "";
}

/* The body to the clone listening at path, and its answer back. */
static int deliver(const struct invoke_request *rq, const char *path, struct invoke_result *r)
{
	struct vsock_call call = {
		.path = path, .port = rq->port, .body = rq->body, .len = rq->len,
		.timeout_ms = rq->timeout_ms, .max_answer = rq->max_answer,
		.delivered_ns = &r->deliver_ns,
	};
	uint64_t start = now_ns();
	int ret;

	if (!*call.path)
		return -EINVAL;
	ret = vsock_call(&call, &r->answer, &r->len);
	r->answer_ns = now_ns() - start - r->deliver_ns;
	return ret;
}

static int fork_one(const struct invoke_request *rq, bool start, struct vm **clone)
{
	const struct fork_request req = { .count = 1, .start_children = start,
					  .resume_parent = false, .devices = rq->devices };
	struct fork_stats st = { 0 };

	if (!*invoke_vsock_path(rq->template))
		return -EINVAL;
	return vm_fork(rq->template, &req, clone, &st);
}

static uint64_t private_bytes(struct vm *vm)
{
	struct mem_ranges pages;
	uint64_t bytes = 0;

	if (guest_mem_private_ranges(&vm->mem, &pages) < 0)
		return 0;
	for (unsigned i = 0; i < pages.n; i++)
		bytes += pages.r[i].len;
	mem_ranges_free(&pages);
	return bytes;
}

int invoke_fork_paused(const struct invoke_request *rq, struct vm **clone)
{
	return fork_one(rq, false, clone);
}

int invoke(const struct invoke_request *rq, struct vm *clone, struct invoke_result *r)
{
	struct vmm *vmm = rq->template->vmm;
	uint64_t start = now_ns();
	int ret = clone ? vm_resume(clone) : fork_one(rq, true, &clone);

	memset(r, 0, sizeof(*r));
	r->fork_ns = now_ns() - start;
	if (clone)
		r->clone_id = clone->id;
	if (!ret)
		ret = deliver(rq, invoke_vsock_path(clone), r);
	else
		r->stage_failed = INVOKE_FORK;
	if (ret < 0 && !r->stage_failed)
		r->stage_failed = INVOKE_ANSWER;
	if (clone) {
		if (rq->measure_private)
			r->private_bytes = private_bytes(clone);
		vmm_put(vmm, clone);
		if (vmm_remove(vmm, r->clone_id) < 0)
			pr_warn("invoke: clone %llu could not be removed", (unsigned long long)r->clone_id);
	}
	return ret;
}

/* ---- A clone in a process of its own ---- */

struct placed {
	const struct clone_cgroups *cgroups;
	struct clone_cgroup cgroup;
};

static int place(void *ctx, pid_t pid, uint64_t clone_id)
{
	struct placed *p = ctx;

	return clone_cgroup_enter(p->cgroups, &p->cgroup, pid, clone_id);
}

/* The clone's process is gone: what its cgroup saw, then the cgroup. */
static int close_cgroup(struct placed *p, int ret, struct invoke_result *r)
{
	if (!p->cgroup.path[0])
		return ret;
	r->private_bytes = clone_cgroup_peak(&p->cgroup);
	r->over_memory = ret < 0 && clone_cgroup_oom_killed(&p->cgroup);
	if (clone_cgroup_remove(&p->cgroup) < 0)
		pr_warn("invoke: the cgroup %s could not be removed", p->cgroup.path);
	return ret;
}

int invoke_in_process(const struct invoke_request *rq, struct proc_pool *workers,
		      const struct clone_cgroups *cgroups, struct invoke_result *r)
{
	const char *arg = rq->devices ? rq->devices->args[device_index(&virtio_vsock_device)] : NULL;
	struct placed placed = { .cgroups = cgroups };
	const struct proc_placement where = { place, &placed };
	struct proc_clone clone = { 0 };
	char path[VSOCK_PATH_MAX] = "";
	uint64_t start = now_ns();
	int ret;

	memset(r, 0, sizeof(*r));
	if (!arg)
		return -EINVAL;
	ret = vm_fork_to_pool_placed(workers, rq->template, 1, rq->devices,
				     cgroups ? &where : NULL, &clone, NULL);
	r->fork_ns = now_ns() - start;
	r->clone_id = clone.id;
	if (ret < 0) {
		r->stage_failed = INVOKE_FORK;
		return close_cgroup(&placed, ret, r);
	}
	ret = virtio_vsock_path_of(arg, clone.id, path, sizeof(path));
	if (!ret)
		ret = deliver(rq, path, r);
	if (ret < 0)
		r->stage_failed = INVOKE_ANSWER;
	proc_worker_discard(&(struct proc_worker){ .pid = clone.pid, .sock = -1 });
	if (*path)
		unlink(path); /* its listener's: a killed process leaves it */
	return close_cgroup(&placed, ret, r);
}
