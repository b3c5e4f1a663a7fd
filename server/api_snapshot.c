/* The control API's snapshot endpoints: start one, then follow its progress. */
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <string.h>

#include "fork/snapdir.h"
#include "fork/vmm.h"
#include "server/api_call.h"
#include "vmm/vm.h"

const char *const api_snapshot_fields[] = { "dir", "diff_base", NULL };

static const char *arg_string(struct api_call *c, const char *key, bool required)
{
	json_t *v = json_object_get(c->args, key);

	if (!v && !required)
		return NULL;
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) >= 4096) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"%s\" must be a path", key);
		return "";
	}
	return json_string_value(v);
}

static json_t *job_json(unsigned id, struct snapshot_job *job)
{
	struct snapshot_progress p;
	json_t *o;

	snapshot_job_progress(job, &p);
	o = json_pack("{s:I, s:b, s:I, s:I, s:I}", "job", (json_int_t)id, "done", p.done,
		      "bytes_done", (json_int_t)p.bytes_done, "bytes_total",
		      (json_int_t)p.bytes_total, "paused_us", (json_int_t)(p.paused_ns / 1000));
	if (o && p.done)
		json_object_set_new(o, "result", json_integer(p.result));
	if (o && p.done && p.result)
		json_object_set_new(o, "error", json_string(strerror(-p.result)));
	return o;
}

static void start_snapshot(struct api_call *c, struct vm *vm, const char *dir, const char *base)
{
	struct snapshot_job *job;
	unsigned id;
	int ret = vm_snapshot_start(vm, dir, base, &job);

	if (ret < 0) {
		api_error(c, ret == -EEXIST || ret == -EINVAL ? MHD_HTTP_CONFLICT
							      : MHD_HTTP_INTERNAL_SERVER_ERROR,
			  "snapshot of VM %" PRIu64 " into %s: %s", c->id, dir, strerror(-ret));
		return;
	}
	id = vmm_add_job(c->vmm, job);
	if (!id) {
		snapshot_job_wait(job);
		snapshot_job_free(job);
		api_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many snapshots being written");
		return;
	}
	api_reply(c, MHD_HTTP_ACCEPTED, job_json(id, job));
}

void api_h_snapshot(struct api_call *c)
{
	const char *dir = arg_string(c, "dir", true), *base = arg_string(c, "diff_base", false);
	struct vm *vm;

	if (c->reply || c->status)
		return; /* a bad argument was answered */
	vm = vmm_get(c->vmm, c->id);
	if (!vm) {
		api_error(c, MHD_HTTP_NOT_FOUND, "no VM with id %" PRIu64, c->id);
		return;
	}
	if (vm_run_state(vm) == VM_STATE_STOPPED)
		api_error(c, MHD_HTTP_CONFLICT, "VM %" PRIu64 " is stopped", c->id);
	else
		start_snapshot(c, vm, dir, base);
	vmm_put(c->vmm, vm);
}

void api_h_snapshot_job(struct api_call *c)
{
	struct snapshot_job *job = c->id <= VMM_MAX_JOBS ? vmm_get_job(c->vmm, (unsigned)c->id) : NULL;

	if (!job)
		api_error(c, MHD_HTTP_NOT_FOUND, "no snapshot job %" PRIu64, c->id);
	else
		api_reply(c, MHD_HTTP_OK, job_json((unsigned)c->id, job));
}
