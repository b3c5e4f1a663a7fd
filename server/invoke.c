/* One invocation of a function in a fresh clone (server/invoke.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "devices/virtio_vsock.h"
#include "fork/fork.h"
#include "fork/vmm.h"
#include "server/invoke.h"
#include "server/vsock_call.h"
#include "vmm/vm.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The clone's own vsock socket, "" when it has no vsock on. */
static const char *vsock_path(struct vm *vm)
{
	int i = device_index(&virtio_vsock_device);

	return i >= 0 && vm_device_arg(vm, (unsigned)i) ? virtio_vsock_path(vm->devs[i]) : "";
}

static int deliver(const struct invoke_request *rq, struct vm *clone, struct invoke_result *r)
{
	struct vsock_call call = {
		.path = vsock_path(clone), .port = rq->port, .body = rq->body, .len = rq->len,
		.timeout_ms = rq->timeout_ms, .max_answer = rq->max_answer,
	};
	uint64_t start = now_ns();
	int ret;

	if (!*call.path)
		return -EINVAL;
	ret = vsock_call(&call, &r->answer, &r->len);
	r->answer_ns = now_ns() - start;
	return ret;
}

int invoke(const struct invoke_request *rq, struct invoke_result *r)
{
	const struct fork_request req = { .count = 1, .start_children = true, .resume_parent = false };
	struct vmm *vmm = rq->template->vmm;
	struct fork_stats st = { 0 };
	struct vm *clone = NULL;
	uint64_t start = now_ns();
	int ret;

	memset(r, 0, sizeof(*r));
	if (!*vsock_path(rq->template))
		return -EINVAL;
	ret = vm_fork(rq->template, &req, &clone, &st);
	r->fork_ns = now_ns() - start;
	if (ret < 0) {
		r->stage_failed = INVOKE_FORK;
		return ret;
	}
	r->clone_id = clone->id;
	ret = deliver(rq, clone, r);
	if (ret < 0)
		r->stage_failed = INVOKE_ANSWER;
	vmm_put(vmm, clone);
	if (vmm_remove(vmm, r->clone_id) < 0)
		pr_warn("invoke: clone %llu could not be removed", (unsigned long long)r->clone_id);
	return ret;
}
