/*
 * The VMM's limits (fork/vmm.h, struct vmm_limits): GET /v1/limits shows them
 * and what counts against them; PUT /v1/limits changes any of them (0: no
 * limit). A limit lowered below what already runs stops nothing: it refuses
 * what comes next.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>

#include "fork/procclones.h"
#include "fork/vmm.h"
#include "server/api_call.h"

const char *const api_limits_fields[] = {
	"max_vms", "guest_forks_per_s", "max_guest_forks", "max_clone_procs", NULL,
};

static json_t *limits_json(struct vmm *vmm)
{
	struct vmm_limits l = vmm_get_limits(vmm);
	struct vmm_usage u = vmm_get_usage(vmm);
	struct proc_clone_table *t = vmm_proc_clones(vmm);

	return json_pack("{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}}",
			 "max_vms", (json_int_t)l.max_vms,
			 "guest_forks_per_s", (json_int_t)l.guest_forks_per_s,
			 "max_guest_forks", (json_int_t)l.max_guest_forks,
			 "max_clone_procs", (json_int_t)l.max_clone_procs, "used",
			 "vms", (json_int_t)u.vms, "guest_forks", (json_int_t)u.guest_forks,
			 "clone_procs", (json_int_t)(t ? proc_clones_running(t) : 0),
			 "refused", (json_int_t)u.refused);
}

void api_h_get_limits(struct api_call *c)
{
	api_reply(c, MHD_HTTP_OK, limits_json(c->vmm));
}

/* The body's key as a limit: an integer from 0 to max, or absent (*val unchanged). */
static int arg_limit(struct api_call *c, const char *key, uint64_t max, uint64_t *val)
{
	json_t *v = json_object_get(c->args, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		api_error(c, MHD_HTTP_BAD_REQUEST, "\"%s\" must be an integer from 0 (no limit) "
			  "to %llu", key, (unsigned long long)max);
		return -EINVAL;
	}
	*val = (uint64_t)json_integer_value(v);
	return 0;
}

void api_h_set_limits(struct api_call *c)
{
	struct vmm_limits l = vmm_get_limits(c->vmm);
	uint64_t vms = l.max_vms, rate = l.guest_forks_per_s, procs = l.max_clone_procs;

	if (arg_limit(c, "max_vms", UINT32_MAX, &vms) ||
	    arg_limit(c, "guest_forks_per_s", UINT32_MAX, &rate) ||
	    arg_limit(c, "max_guest_forks", INT64_MAX, &l.max_guest_forks) ||
	    arg_limit(c, "max_clone_procs", UINT32_MAX, &procs))
		return;
	l.max_vms = (unsigned)vms;
	l.guest_forks_per_s = (unsigned)rate;
	l.max_clone_procs = (unsigned)procs;
	vmm_set_limits(c->vmm, &l);
	api_reply(c, MHD_HTTP_OK, limits_json(c->vmm));
}
