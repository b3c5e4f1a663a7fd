/*
 * The control API's endpoints (server/api.h): the route table and the VM
 * handlers (forks: server/api_fork.c; snapshots: server/api_snapshot.c).
 * A handler runs on the server's one thread with a validated request; it
 * answers through api_reply() / api_error() (server/api_call.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/process_stats.h"
#include "core/version.h" /* VMFORK_VERSION */
#include "fork/reset.h"
#include "fork/shells.h"
#include "fork/vmm.h"
#include "server/api_call.h"
#include "vmm/vm.h"

#define API_STOP_WAIT_MS 1000

/* ---- VMs as JSON ---- */

static void add_stop_info(json_t *o, struct vm *vm)
{
	json_object_set_new(o, "stop_reason", json_string(vm_stop_reason_name(vm_stop_reason(vm))));
	json_object_set_new(o, "exit_status", json_integer(vm_exit_code(vm)));
}

static json_t *vm_json(struct vm *vm)
{
	enum vm_run_state state = vm_run_state(vm);
	uint64_t gen, index;
	json_t *o;

	ctl_identity(&vm->ctl, &gen, &index);
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
struct vm *api_call_vm(struct api_call *c)
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
	api_reply(c, MHD_HTTP_OK, json_pack("{s:o, s:o}", "vms", vms, "processes",
					    api_proc_clones_json(c->vmm)));
}

static void h_get(struct api_call *c)
{
	struct vm *vm = vmm_get(c->vmm, c->id);
	json_t *clone = vm ? NULL : api_proc_clone_json(c->vmm, c->id);

	if (clone) {
		api_reply(c, MHD_HTTP_OK, clone);
		return;
	}
	if (!vm)
		vm = api_call_vm(c); /* the 404 */
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
	struct vm *vm = api_call_vm(c);
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

/* Reset-in-place (fork/reset.h): mark a running or paused VM's point, or go back to it. */
static void reset_op(struct api_call *c, bool mark)
{
	struct vm *vm = api_call_vm(c);
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
	struct vm *vm = vmm_get(c->vmm, c->id);

	if (!vm && api_stop_proc_clone(c))
		return;
	if (!vm)
		vm = api_call_vm(c); /* the 404 */
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

/* ---- The routes ---- */

const struct api_route api_routes[] = {
	{ "GET", "/v1/info", h_info, NULL },
	{ "GET", "/v1/limits", api_h_get_limits, NULL },
	{ "PUT", "/v1/limits", api_h_set_limits, api_limits_fields },
	{ "GET", "/v1/vms", h_list, NULL },
	{ "GET", "/v1/vms/{id}", h_get, NULL },
	{ "DELETE", "/v1/vms/{id}", h_delete, NULL },
	{ "PUT", "/v1/vms/{id}/pause", h_pause, NULL },
	{ "PUT", "/v1/vms/{id}/resume", h_resume, NULL },
	{ "PUT", "/v1/vms/{id}/stop", h_stop, NULL },
	{ "PUT", "/v1/vms/{id}/fork", api_h_fork, api_fork_fields },
	{ "PUT", "/v1/vms/{id}/reset-point", h_mark, NULL },
	{ "PUT", "/v1/vms/{id}/reset", h_reset, NULL },
	{ "PUT", "/v1/vms/{id}/snapshot", api_h_snapshot, api_snapshot_fields },
	{ "GET", "/v1/snapshots/{id}", api_h_snapshot_job, NULL },
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
