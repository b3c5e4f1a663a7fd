/*
 * The control API's endpoints (vmm/api.h): the route table and its handlers.
 * A handler runs on the server's one thread with a validated request; it
 * answers through api_reply() / api_error() (vmm/api_call.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/fork.h"
#include "snapshot/procfork.h"
#include "snapshot/reset.h"
#include "snapshot/shells.h"
#include "vmm/version.h" /* VMFORK_VERSION */
#include "vmm/api_call.h"
#include "vmm/process_stats.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#define API_STOP_WAIT_MS 1000

/* ---- VMs as JSON ---- */

static void add_stop_info(json_t *o, struct vm *vm)
{
	enum vm_stop_reason reason;

	pthread_mutex_lock(&vm->lock);
	reason = vm->stop_reason;
	pthread_mutex_unlock(&vm->lock);
	json_object_set_new(o, "stop_reason", json_string(vm_stop_reason_name(reason)));
	json_object_set_new(o, "exit_status", json_integer(vm_exit_code(vm)));
}

static json_t *vm_json(struct vm *vm)
{
	enum vm_run_state state = vm_run_state(vm);
	uint64_t gen, index;
	json_t *o;

	pthread_mutex_lock(&vm->ctl.lock);
	gen = vm->ctl.generation;
	index = vm->ctl.child_index;
	pthread_mutex_unlock(&vm->ctl.lock);
	o = json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:o}",
		      "id", (json_int_t)vm->id, "parent_id", (json_int_t)vm->parent_id,
		      "generation", (json_int_t)gen, "child_index", (json_int_t)index,
		      "state", vm_run_state_name(state), "cpus", (json_int_t)vm->ncpus,
		      "mem_bytes", (json_int_t)vm->mem.size,
		      "console", api_json_text(vm->console_spec, sizeof(vm->console_spec)));
	if (o)
		json_object_set_new(o, "private_bytes", json_integer((json_int_t)vm_private_bytes(vm)));
	if (o && state == VM_STATE_STOPPED)
		add_stop_info(o, vm);
	return o;
}

/* The VM the path names, referenced; NULL with a 404 when there is none. */
static struct vm *call_vm(struct api_call *c)
{
	struct vm *vm = vmm_get(c->vmm, c->id);

	if (!vm)
		api_error(c, MHD_HTTP_NOT_FOUND, "no VM with id %" PRIu64, c->id);
	return vm;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Registered ids, sorted, into a malloc'd array; the table may grow between two looks. */
static unsigned list_ids(struct vmm *vmm, uint64_t **out)
{
	uint64_t *ids = NULL, *grown;
	unsigned cap = 0, n;

	for (;;) {
		n = vmm_list(vmm, ids ? ids : (uint64_t[1]){ 0 }, cap);
		if (n <= cap)
			break;
		cap = n + 16;
		grown = realloc(ids, cap * sizeof(*ids));
		if (!grown) {
			n = 0;
			break;
		}
		ids = grown;
	}
	if (n)
		qsort(ids, n, sizeof(*ids), cmp_id);
	*out = ids;
	return n;
}

/* ---- Handlers ---- */

static void h_info(struct api_call *c)
{
	unsigned ready = 0, prepared = 0, target = 0;
	uint64_t none;

	if (c->vmm->shells) {
		ready = shell_pool_ready(c->vmm->shells, &prepared);
		target = shell_pool_target(c->vmm->shells);
	}
	api_reply(c, MHD_HTTP_OK,
		  json_pack("{s:s, s:s, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}}", "version",
			    VMFORK_VERSION, "api", "v1", "vms",
			    (json_int_t)vmm_list(c->vmm, &none, 0), "shells", "target",
			    (json_int_t)target, "ready", (json_int_t)ready, "prepared",
			    (json_int_t)prepared, "process", "open_fds",
			    (json_int_t)process_open_fds(), "rss_kib", (json_int_t)process_rss_kib(),
			    "uss_kib", (json_int_t)process_uss_kib()));
}

static void h_list(struct api_call *c)
{
	json_t *vms = json_array();
	uint64_t *ids;
	unsigned n = list_ids(c->vmm, &ids);

	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vmm_get(c->vmm, ids[i]);

		if (!vm)
			continue; /* removed since we looked */
		json_array_append_new(vms, vm_json(vm));
		vmm_put(c->vmm, vm);
	}
	free(ids);
	api_reply(c, MHD_HTTP_OK, json_pack("{s:o}", "vms", vms));
}

static void h_get(struct api_call *c)
{
	struct vm *vm = call_vm(c);

	if (!vm)
		return;
	api_reply(c, MHD_HTTP_OK, vm_json(vm));
	vmm_put(c->vmm, vm);
}

struct state_change {
	const char *verb;
	enum vm_run_state from;
	int (*op)(struct vm *vm);
};

static void change_state(struct api_call *c, const struct state_change *sc)
{
	struct vm *vm = call_vm(c);
	enum vm_run_state state;
	int ret = -EINVAL;

	if (!vm)
		return;
	state = vm_run_state(vm);
	if (state == sc->from)
		ret = sc->op(vm);
	if (!ret)
		api_reply(c, MHD_HTTP_OK, vm_json(vm));
	else if (ret == -EINVAL)
		api_error(c, MHD_HTTP_CONFLICT, "cannot %s VM %" PRIu64 ": it is %s, not %s",
			  sc->verb, c->id, vm_run_state_name(vm_run_state(vm)),
			  vm_run_state_name(sc->from));
	else
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not %s VM %" PRIu64 ": %s",
			  sc->verb, c->id, strerror(-ret));
	vmm_put(c->vmm, vm);
}

static void h_pause(struct api_call *c)
{
	static const struct state_change sc = { "pause", VM_STATE_RUNNING, vm_pause };

	change_state(c, &sc);
}

static void h_resume(struct api_call *c)
{
	static const struct state_change sc = { "resume", VM_STATE_PAUSED, vm_resume };

	change_state(c, &sc);
}

/* Reset-in-place (snapshot/reset.h): mark a running or paused VM's point, or go back to it. */
static void reset_op(struct api_call *c, bool mark)
{
	struct vm *vm = call_vm(c);
	struct reset_stats st = { 0 };
	int ret;

	if (!vm)
		return;
	ret = mark ? vm_mark_reset_point(vm) : vm_reset(vm, &st);
	if (!ret && mark)
		api_reply(c, MHD_HTTP_OK, vm_json(vm));
	else if (!ret)
		api_reply(c, MHD_HTTP_OK,
			  json_pack("{s:I, s:I, s:I}", "id", (json_int_t)vm->id, "pages_reset",
				    (json_int_t)st.pages_reset, "reset_us",
				    (json_int_t)(st.total_ns / 1000)));
	else if (ret == -ENOENT)
		api_error(c, MHD_HTTP_CONFLICT, "VM %" PRIu64 " has no reset point: mark one first",
			  c->id);
	else if (ret == -EINVAL)
		api_error(c, MHD_HTTP_CONFLICT, "VM %" PRIu64 " is %s", c->id,
			  vm_run_state_name(vm_run_state(vm)));
	else
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "VM %" PRIu64 ": %s", c->id,
			  strerror(-ret));
	vmm_put(c->vmm, vm);
}

static void h_mark(struct api_call *c)
{
	reset_op(c, true);
}

static void h_reset(struct api_call *c)
{
	reset_op(c, false);
}

static void wait_stopped(struct vm *vm, unsigned timeout_ms)
{
	struct timespec step = { 0, 5 * 1000 * 1000 };

	for (unsigned waited = 0; waited < timeout_ms && vm_run_state(vm) != VM_STATE_STOPPED;
	     waited += 5)
		nanosleep(&step, NULL);
}

static void h_stop(struct api_call *c)
{
	struct vm *vm = call_vm(c);

	if (!vm)
		return;
	vm_request_stop(vm, VM_STOP_REQUESTED, 0);
	wait_stopped(vm, API_STOP_WAIT_MS);
	api_reply(c, MHD_HTTP_OK, vm_json(vm));
	vmm_put(c->vmm, vm);
}

static void h_delete(struct api_call *c)
{
	int ret = vmm_remove(c->vmm, c->id);

	if (ret == -ENOENT)
		api_error(c, MHD_HTTP_NOT_FOUND, "no VM with id %" PRIu64, c->id);
	else if (ret < 0)
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not remove VM %" PRIu64 ": %s",
			  c->id, strerror(-ret));
	else
		api_reply(c, MHD_HTTP_NO_CONTENT, NULL);
}

/* ---- Fork ---- */

static const char *const fork_fields[] = { "count", "start", "resume_parent", "processes", NULL };

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
};

static void fork_failed(struct api_call *c, struct vm *parent, unsigned count, int err)
{
	enum vm_run_state state = vm_run_state(parent);

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
	return json_pack("{s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
			 "parent", (json_int_t)parent, "children", list, "stats",
			 "paused_us", (json_int_t)(st->paused_ns / 1000),
			 "total_us", (json_int_t)(st->total_ns / 1000),
			 "freeze_us", (json_int_t)(st->freeze_ns / 1000),
			 "capture_us", (json_int_t)(st->capture_ns / 1000),
			 "children_us", (json_int_t)(st->children_ns / 1000),
			 "pages_copied", (json_int_t)st->pages_copied,
			 "from_shells", (json_int_t)st->from_shells);
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

/* Clones in their own processes (snapshot/procfork.h): each with its pid. */
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

static void do_fork_processes(struct api_call *c, struct vm *parent, unsigned count)
{
	struct proc_clone *clones = calloc(count, sizeof(*clones));
	struct fork_stats st = { 0 };
	int ret;

	if (!clones) {
		api_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	ret = c->vmm->procs ? vm_fork_to_pool(c->vmm->procs, parent, count, clones, &st)
			    : vm_fork_to_processes(parent, count, clones, &st);
	if (ret < 0) {
		fork_failed(c, parent, count, ret);
	} else {
		/* Nobody here waits for them: a thread each reaps its process when it ends. */
		for (unsigned i = 0; i < count; i++)
			proc_clone_reap_detached(clones[i].pid);
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
		fork_failed(c, parent, req->count, ret);
	} else {
		api_reply(c, MHD_HTTP_OK, fork_json(parent->id, children, req->count, &st));
		for (unsigned i = 0; i < req->count; i++)
			vmm_put(c->vmm, children[i]);
	}
	free(children);
}

static void h_fork(struct api_call *c)
{
	struct fork_request req = { .count = 1, .start_children = true, .resume_parent = true };
	bool processes = false;
	struct vm *parent;

	if (arg_count(c, "count", FORK_MAX_COUNT, &req.count) ||
	    arg_bool(c, "start", &req.start_children) ||
	    arg_bool(c, "resume_parent", &req.resume_parent) ||
	    arg_bool(c, "processes", &processes))
		return;
	if (processes && (!req.start_children || !req.resume_parent)) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "clones in their own processes always start, "
			  "and a running parent always goes on");
		return;
	}
	parent = call_vm(c);
	if (!parent)
		return;
	if (vm_run_state(parent) == VM_STATE_STOPPED)
		api_error(c, MHD_HTTP_CONFLICT, "cannot fork VM %" PRIu64 ": it is stopped", c->id);
	else if (processes)
		do_fork_processes(c, parent, req.count);
	else
		do_fork(c, parent, &req);
	vmm_put(c->vmm, parent);
}

/* ---- The routes ---- */

const struct api_route api_routes[] = {
	{ "GET", "/v1/info", h_info, NULL },
	{ "GET", "/v1/vms", h_list, NULL },
	{ "GET", "/v1/vms/{id}", h_get, NULL },
	{ "DELETE", "/v1/vms/{id}", h_delete, NULL },
	{ "PUT", "/v1/vms/{id}/pause", h_pause, NULL },
	{ "PUT", "/v1/vms/{id}/resume", h_resume, NULL },
	{ "PUT", "/v1/vms/{id}/stop", h_stop, NULL },
	{ "PUT", "/v1/vms/{id}/fork", h_fork, fork_fields },
	{ "PUT", "/v1/vms/{id}/reset-point", h_mark, NULL },
	{ "PUT", "/v1/vms/{id}/reset", h_reset, NULL },
	{ "PUT", "/v1/vms/{id}/snapshot", api_h_snapshot, api_snapshot_fields },
	{ "GET", "/v1/snapshots/{id}", api_h_snapshot_job, NULL },
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
