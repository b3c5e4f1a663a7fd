/* The control API's forks, in this process or in others, and the clones placed in other processes. */
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"
#include "fork/fork.h"
#include "fork/procclones.h"
#include "fork/procfork.h"
#include "fork/vmm.h"
#include "server/api_call.h"
#include "vmm/vm.h"

static json_t *record_json(const struct proc_clone_record *r)
{
	json_t *o = json_pack("{s:I, s:I, s:I, s:s}", "id", (json_int_t)r->id, "parent_id",
			      (json_int_t)r->parent_id, "pid", (json_int_t)r->pid, "state",
			      r->running ? "running" : "stopped");

	if (o && !r->running)
		json_object_set_new(o, "exit_status", json_integer(r->status));
	return o;
}

/* The clones this VMM placed in other processes, running or ended. */
json_t *api_proc_clones_json(struct vmm *vmm)
{
	enum { MAX_LISTED = 4096 };
	struct proc_clone_table *t = vmm_proc_clones(vmm);
	struct proc_clone_record *r = t ? calloc(MAX_LISTED, sizeof(*r)) : NULL;
	unsigned n = r ? proc_clones_list(t, r, MAX_LISTED) : 0;
	json_t *list = json_array();

	for (unsigned i = 0; i < n; i++)
		json_array_append_new(list, record_json(&r[i]));
	free(r);
	return list;
}

json_t *api_proc_clone_json(struct vmm *vmm, uint64_t id)
{
	struct proc_clone_table *t = vmm_proc_clones(vmm);
	struct proc_clone_record r;

	return t && proc_clones_get(t, id, &r) ? record_json(&r) : NULL;
}

/* A clone in another process is stopped as its worker stops it: SIGTERM. */
bool api_stop_proc_clone(struct api_call *c)
{
	struct proc_clone_table *t = vmm_proc_clones(c->vmm);
	int ret = t ? proc_clones_signal(t, c->id, SIGTERM) : -ENOENT;

	if (ret == -ENOENT)
		return false;
	if (ret == -ESRCH)
		api_error(c, MHD_HTTP_CONFLICT, "clone %" PRIu64 " (a process) has ended", c->id);
	else if (ret < 0)
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not signal clone %" PRIu64 ": %s",
			  c->id, strerror(-ret));
	else
		api_reply(c, MHD_HTTP_OK, json_pack("{s:I, s:s}", "id", (json_int_t)c->id, "state",
						    "stopping"));
	return true;
}

const char *const api_fork_fields[] = { "count", "start", "resume_parent", "processes", "devices",
					NULL };

static int arg_bool(struct api_call *c, const char *key, bool *val)
{
	json_t *v = json_object_get(c->args, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"%s\" must be true or false", key);
		return -EINVAL;
	}
	*val = json_is_true(v);
	return 0;
}

static int arg_count(struct api_call *c, const char *key, unsigned max, unsigned *val)
{
	json_t *v = json_object_get(c->args, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"%s\" must be an integer from 1 to %u", key,
			  max);
		return -EINVAL;
	}
	*val = (unsigned)json_integer_value(v);
	return 0;
}

/* One entry of "devices": an option whose device can rebind, and a string it can hold. */
static int device_arg(struct api_call *c, const char *key, json_t *val, struct device_config *cfg)
{
	int i = device_by_option(key);

	if (i < 0) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"devices\": no device has the option \"%s\"", key);
		return -EINVAL;
	}
	if (!device_table[i]->rebind) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"devices\": the %s device (\"%s\") cannot "
			  "give a clone a backend of its own", device_table[i]->name, key);
		return -EINVAL;
	}
	/* No NUL inside: the server parses without JSON_ALLOW_NUL. */
	if (!json_is_string(val) || !json_string_length(val) ||
	    json_string_length(val) >= DEVICE_ARG_MAX) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"devices\": \"%s\" must be a string of 1 to %d "
			  "bytes (\"%%u\" becomes each clone's id)", key, DEVICE_ARG_MAX - 1);
		return -EINVAL;
	}
	cfg->args[i] = json_string_value(val);
	return 0;
}

/*
 * "devices": {"vsock": "/run/c%u.sock", ...}: each clone's own backends,
 * checked before anything is forked. The strings stay c->args'.
 */
static int arg_devices(struct api_call *c, struct device_config *cfg)
{
	json_t *v = json_object_get(c->args, "devices"), *val;
	const char *key;

	if (!v)
		return 0;
	if (!json_is_object(v)) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"devices\" must be an object of device options "
			  "and arguments, e.g. {\"vsock\": \"/run/c%%u.sock\"}");
		return -EINVAL;
	}
	json_object_foreach(v, key, val)
		if (device_arg(c, key, val, cfg) < 0)
			return -EINVAL;
	return 0;
}

/* A clone can only rebind what its parent has on: what it inherits is what it rebinds. */
static int check_parent_devices(struct api_call *c, struct vm *parent,
				const struct device_config *cfg)
{
	for (unsigned i = 0; cfg && device_table[i]; i++)
		if (cfg->args[i] && !vm_device_arg(parent, i)) {
			api_error(c, MHD_HTTP_BAD_REQUEST, "\"devices\": VM %" PRIu64 " has no %s "
				  "(it was not started with --%s)", c->id, device_table[i]->name,
				  device_table[i]->option);
			return -EINVAL;
		}
	return 0;
}

/* Whether parent can take this fork: false once answered why not. */
static bool can_fork(struct api_call *c, struct vm *parent, const struct device_config *devices)
{
	if (vm_run_state(parent) == VM_STATE_STOPPED) {
		api_error(c, MHD_HTTP_CONFLICT, "cannot fork VM %" PRIu64 ": it is stopped", c->id);
		return false;
	}
	return check_parent_devices(c, parent, devices) == 0;
}

static const struct fork_error {
	int err;
	unsigned status;
	const char *what;
} fork_errors[] = {
	{ ENOMEM, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory" },
	{ ENOSPC, MHD_HTTP_INTERNAL_SERVER_ERROR, "no space left for the clones' memory or ids" },
	{ EMFILE, MHD_HTTP_INTERNAL_SERVER_ERROR, "too many open files in this process" },
	{ ENFILE, MHD_HTTP_INTERNAL_SERVER_ERROR, "too many open files on this host" },
	{ EBUSY, MHD_HTTP_CONFLICT, "the VM is busy (a fork or pause is under way)" },
	{ EDQUOT, MHD_HTTP_TOO_MANY_REQUESTS, "over this VMM's limits (GET /v1/limits)" },
	{ ESHUTDOWN, MHD_HTTP_SERVICE_UNAVAILABLE, "the VMM is stopping" },
};

static void fork_failed(struct api_call *c, struct vm *parent, unsigned count, int err,
			bool devices)
{
	enum vm_run_state state = vm_run_state(parent);
	bool forkable = state == VM_STATE_RUNNING || state == VM_STATE_PAUSED;

	/* The request was checked, the VM could fork: a clone's device refused its argument. */
	if (devices && forkable && (err == -EINVAL || err == -ENAMETOOLONG)) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"devices\": a clone's device refused its "
			  "argument (%s; the VMM's log says which): VM %" PRIu64 " was not forked",
			  strerror(-err), c->id);
		return;
	}
	if (err == -EINVAL) {
		api_error(c, MHD_HTTP_CONFLICT, "cannot fork VM %" PRIu64 ": it is %s", c->id,
			  vm_run_state_name(state));
		return;
	}
	for (size_t i = 0; i < sizeof(fork_errors) / sizeof(fork_errors[0]); i++)
		if (-err == fork_errors[i].err) {
			api_error(c, fork_errors[i].status, "%s: could not fork VM %" PRIu64
				  " into %u clone(s)", fork_errors[i].what, c->id, count);
			return;
		}
	api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not fork VM %" PRIu64 ": %s", c->id,
		  strerror(-err));
}

static json_t *fork_reply(uint64_t parent, json_t *list, const struct fork_stats *st)
{
	return json_pack("{s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}}",
			 "parent", (json_int_t)parent, "children", list, "stats",
			 "paused_us", (json_int_t)(st->paused_ns / 1000),
			 "total_us", (json_int_t)(st->total_ns / 1000),
			 "freeze_us", (json_int_t)(st->freeze_ns / 1000),
			 "capture_us", (json_int_t)(st->capture_ns / 1000),
			 "children_us", (json_int_t)(st->children_ns / 1000),
			 "pages_copied", (json_int_t)st->pages_copied,
			 "from_shells", (json_int_t)st->from_shells,
			 "parent_moved", st->moved);
}

static json_t *fork_json(uint64_t parent, struct vm **children, unsigned n,
			 const struct fork_stats *st)
{
	json_t *list = json_array();

	for (unsigned i = 0; i < n; i++) {
		struct vm *child = children[i];

		json_array_append_new(list, json_pack("{s:I, s:o}", "id", (json_int_t)child->id,
			"console", api_json_text(child->console_spec, sizeof(child->console_spec))));
	}
	return fork_reply(parent, list, st);
}

/* Clones in their own processes (fork/procfork.h): each with its pid. */
static json_t *proc_fork_json(struct vm *parent, const struct proc_clone *clones, unsigned n,
			      const struct fork_stats *st)
{
	json_t *list = json_array();
	char console[256];

	for (unsigned i = 0; i < n; i++) {
		if (proc_clone_console(parent, clones[i].id, console, sizeof(console)) < 0)
			console[0] = 0;
		json_array_append_new(list, json_pack("{s:I, s:I, s:o}", "id",
			(json_int_t)clones[i].id, "pid", (json_int_t)clones[i].pid,
			"console", api_json_text(console, sizeof(console))));
	}
	return fork_reply(parent->id, list, st);
}

static void do_fork_processes(struct api_call *c, struct vm *parent, unsigned count,
			      const struct device_config *devices)
{
	struct proc_clone *clones = calloc(count, sizeof(*clones));
	struct fork_stats st = { 0 };
	int ret;

	if (!clones) {
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	ret = vmm_room_for_procs(c->vmm, count);
	if (!ret)
		ret = vm_fork_to_pool_devices(c->vmm->procs, parent, count, devices, clones, &st);
	if (ret < 0) {
		fork_failed(c, parent, count, ret, devices != NULL);
	} else {
		/* Listed with the VMs, stopped by id; a thread each reaps its process. */
		struct proc_clone_table *t = vmm_proc_clones(c->vmm);

		for (unsigned i = 0; i < count; i++)
			if (!t || proc_clones_track(t, &clones[i], parent->id) < 0)
				pr_warn("clone %llu (process %d) is not tracked",
					(unsigned long long)clones[i].id, (int)clones[i].pid);
		api_reply(c, MHD_HTTP_OK, proc_fork_json(parent, clones, count, &st));
	}
	free(clones);
}

static void do_fork(struct api_call *c, struct vm *parent, const struct fork_request *req)
{
	struct vm **children = calloc(req->count, sizeof(*children));
	struct fork_stats st = { 0 };
	int ret;

	if (!children) {
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	ret = vm_fork(parent, req, children, &st);
	if (ret < 0) {
		fork_failed(c, parent, req->count, ret, req->devices != NULL);
	} else {
		api_reply(c, MHD_HTTP_OK, fork_json(parent->id, children, req->count, &st));
		for (unsigned i = 0; i < req->count; i++)
			vmm_put(c->vmm, children[i]);
	}
	free(children);
}

void api_h_fork(struct api_call *c)
{
	struct fork_request req = { .count = 1, .start_children = true, .resume_parent = true };
	struct device_config devices = { { 0 } };
	bool processes = false;
	struct vm *parent;

	if (arg_count(c, "count", FORK_MAX_COUNT, &req.count) ||
	    arg_bool(c, "start", &req.start_children) ||
	    arg_bool(c, "resume_parent", &req.resume_parent) ||
	    arg_bool(c, "processes", &processes) || arg_devices(c, &devices))
		return;
	if (json_object_get(c->args, "devices"))
		req.devices = &devices;
	if (processes && (!req.start_children || !req.resume_parent)) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "clones in their own processes always start, "
			  "and a running parent always goes on");
		return;
	}
	parent = api_call_vm(c);
	if (!parent)
		return;
	if (can_fork(c, parent, req.devices)) {
		if (processes)
			do_fork_processes(c, parent, req.count, req.devices);
		else
			do_fork(c, parent, &req);
	}
	vmm_put(c->vmm, parent);
}
