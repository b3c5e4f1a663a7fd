/* The functions of `vm-fork serve` on the API's socket (server/fn_server.h). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fork/vmm.h"
#include "server/api.h"
#include "server/fn_pool.h"
#include "server/fn_server.h"
#include "server/fn_server_int.h"
#include "server/serve_config.h"
#include "server/template.h"
#include "vmm/vm.h"

#define FUNCTIONS "/v1/functions"
#define INVOKE    "/invoke"
/* A request body as large as the largest answer allowed: 16 MiB. */
#define MAX_BODY  (16u << 20)

static void reply_text(struct api_raw_reply *out, unsigned status, const char *type, char *text)
{
	out->status = text ? status : MHD_HTTP_INTERNAL_SERVER_ERROR;
	out->body = text;
	out->len = text ? strlen(text) : 0;
	out->content_type = type;
}

static void reply_json(struct api_raw_reply *out, unsigned status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	char *nl = text ? realloc(text, strlen(text) + 2) : NULL;

	if (nl)
		strcat(nl, "\n");
	json_decref(j);
	reply_text(out, status, "application/json", nl ? nl : text);
}

static void reply_error(struct api_raw_reply *out, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct api_raw_reply *out, unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(out, status, json_pack("{s:s}", "error", msg));
}

static void add_header(struct api_raw_reply *out, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add_header(struct api_raw_reply *out, const char *name, const char *fmt, ...)
{
	va_list ap;

	for (unsigned i = 0; i < API_RAW_HEADERS; i++) {
		if (out->header_names[i])
			continue;
		out->header_names[i] = name;
		va_start(ap, fmt);
		vsnprintf(out->header_values[i], sizeof(out->header_values[i]), fmt, ap);
		va_end(ap);
		return;
	}
}

static struct fn_pool *pool_named(struct fn_server *s, const char *name, size_t len)
{
	for (unsigned i = 0; i < s->npools; i++)
		if (strlen(s->pools[i]->f->name) == len && !strncmp(s->pools[i]->f->name, name, len))
			return s->pools[i];
	return NULL;
}

static void answer_failure(struct api_raw_reply *out, const struct fn_pool *p, enum fn_outcome o,
			   int err)
{
	const char *name = p->f->name;

	switch (o) {
	case FN_OVERLOAD:
		add_header(out, MHD_HTTP_HEADER_RETRY_AFTER, "1");
		if (err == -EBUSY)
			reply_error(out, MHD_HTTP_TOO_MANY_REQUESTS,
				    "%s: %u invocations at once already (pool.max_concurrent)", name,
				    p->f->pool.max_concurrent);
		else
			reply_error(out, MHD_HTTP_TOO_MANY_REQUESTS,
				    "%s: the VMM holds as many VMs as it may (max_vms)", name);
		break;
	case FN_TIMEOUT:
		reply_error(out, MHD_HTTP_GATEWAY_TIMEOUT, "%s: no answer within %u ms (timeout_ms)",
			    name, p->f->timeout_ms);
		break;
	case FN_CRASHED:
	case FN_TOO_BIG:
		reply_error(out, MHD_HTTP_BAD_GATEWAY, "%s: %s", name,
			    o == FN_TOO_BIG ? "the answer is longer than max_answer" :
			    "the guest closed, refused or died without an answer");
		break;
	case FN_OUT_OF_MEMORY:
		reply_error(out, MHD_HTTP_BAD_GATEWAY,
			    "%s: the clone went over its %llu bytes of memory (pool.mem_limit)", name,
			    (unsigned long long)p->f->pool.mem_limit);
		break;
	case FN_UNAVAILABLE:
		reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "%s: the server is stopping", name);
		break;
	default:
		reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s: %s", name, strerror(-err));
	}
}

static void serve_invoke(struct fn_pool *p, const char *body, size_t len,
			 struct api_raw_reply *out)
{
	struct invoke_result r;
	int err;
	enum fn_outcome o = fn_pool_invoke(p, body, len, &r, &err);

	if (o != FN_OK) {
		answer_failure(out, p, o, err);
	} else {
		out->status = MHD_HTTP_OK;
		out->body = r.answer;
		out->len = r.len;
	}
	if (r.clone_id) {
		add_header(out, "X-Clone-Id", "%llu", (unsigned long long)r.clone_id);
		add_header(out, "Server-Timing", "fork;dur=%.3f, deliver;dur=%.3f, answer;dur=%.3f",
			   (double)r.fork_ns / 1e6, (double)r.deliver_ns / 1e6,
			   (double)r.answer_ns / 1e6);
	}
}

/* Whether the pool's per-clone limits hold, and where or why not. */
static json_t *limits_json(const struct fn_pool *p)
{
	const struct serve_pool *c = &p->f->pool;

	if (!c->mem_limit && c->cpu_limit <= 0)
		return json_pack("{s:b, s:s}", "enforced", 0, "why", "none configured");
	if (!p->workers)
		return json_pack("{s:b, s:s}", "enforced", 0, "why", p->cgroups.why);
	return json_pack("{s:b, s:I, s:f, s:s}", "enforced", 1, "mem_limit",
			 (json_int_t)c->mem_limit, "cpu_limit", c->cpu_limit, "cgroup",
			 p->cgroups.parent);
}

static json_t *pool_json(struct fn_pool *p)
{
	struct fn_pool_stats st;
	json_t *outcomes = json_object();

	fn_pool_get_stats(p, &st);
	for (unsigned o = 0; o < FN_OUTCOMES && outcomes; o++)
		json_object_set_new(outcomes, fn_outcome_name(o), json_integer((json_int_t)st.outcomes[o]));
	return json_pack("{s:I, s:I, s:I, s:I, s:o*, s:I, s:o*}", "template",
			 (json_int_t)p->template->id, "warm", (json_int_t)st.warm, "warm_target",
			 (json_int_t)st.warm_target, "inflight", (json_int_t)st.inflight,
			 "invocations", outcomes, "forks", (json_int_t)st.forks, "limits",
			 limits_json(p));
}

static void serve_list(struct fn_server *s, struct api_raw_reply *out)
{
	json_t *fns = json_object();

	for (unsigned i = 0; i < s->npools && fns; i++)
		json_object_set_new(fns, s->pools[i]->f->name, pool_json(s->pools[i]));
	reply_json(out, MHD_HTTP_OK, json_pack("{s:o*}", "functions", fns));
}

static bool claims(void *ctx, const char *method, const char *url)
{
	(void)ctx;
	(void)method;
	return !strcmp(url, "/metrics") || !strcmp(url, FUNCTIONS) ||
	       !strncmp(url, FUNCTIONS "/", strlen(FUNCTIONS "/"));
}

static void serve(void *ctx, const char *method, const char *url, const char *body, size_t len,
		  struct api_raw_reply *out)
{
	struct fn_server *s = ctx;
	const char *name = url + strlen(FUNCTIONS "/");
	size_t name_len = strcspn(name, "/");
	bool get = !strcmp(method, "GET"), is_invoke = false;
	struct fn_pool *p = NULL;

	if (!strncmp(url, FUNCTIONS "/", strlen(FUNCTIONS "/"))) {
		is_invoke = !strcmp(name + name_len, INVOKE);
		p = pool_named(s, name, name_len);
	}
	if (!is_invoke && strcmp(url, FUNCTIONS) && strcmp(url, "/metrics")) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", url);
	} else if (is_invoke && !p) {
		reply_error(out, MHD_HTTP_NOT_FOUND, "no such function: %.*s",
			    (int)(name_len < 64 ? name_len : 64), name);
	} else if (is_invoke ? strcmp(method, "POST") : !get) {
		add_header(out, MHD_HTTP_HEADER_ALLOW, is_invoke ? "POST" : "GET");
		reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %s", method, url);
	} else if (is_invoke) {
		serve_invoke(p, body, len, out);
	} else if (!strcmp(url, "/metrics")) {
		reply_text(out, MHD_HTTP_OK, "text/plain; version=0.0.4", fn_server_metrics(s));
	} else {
		serve_list(s, out);
	}
}

static int start_pool(struct fn_server *s, const struct serve_function *f, const char *console_dir)
{
	char console[4096] = "none";
	struct vm *template;
	int ret;

	if (console_dir)
		snprintf(console, sizeof(console), "file:%s/%s.log", console_dir, f->name);
	pr_info("%s: starting its template (%s)", f->name, f->snapshot ? f->snapshot : f->kernel);
	ret = template_start(s->vmm, f, console, &template);
	if (ret < 0)
		return ret;
	ret = fn_pool_start(&s->pools[s->npools], s->vmm, template, f);
	vmm_put(s->vmm, template);
	if (ret < 0) {
		vmm_remove(s->vmm, template->id);
		return ret;
	}
	s->npools++;
	pr_info("%s: template VM %llu ready", f->name, (unsigned long long)template->id);
	return 0;
}

/* The functions on loopback TCP too; the port is logged, as port 0 picks one. */
static int listen_tcp(struct fn_server *s, const char *addr)
{
	unsigned port = 0;
	int ret = api_server_listen_tcp(s->api, addr, &port);

	if (ret < 0)
		pr_err("serve: cannot listen on TCP %s: %s", addr, strerror(-ret));
	else
		pr_info("serve: the functions on TCP port %u too (%s)", port, addr);
	return ret;
}

int fn_server_start(struct fn_server **out, struct vmm *vmm, const struct serve_config *cfg,
		    const char *console_dir)
{
	struct fn_server *s = calloc(1, sizeof(*s));
	struct api_extension ext = { .max_body = MAX_BODY, .claims = claims, .serve = serve };
	int ret = 0;

	if (!s)
		return -ENOMEM;
	s->vmm = vmm;
	ext.ctx = s;
	for (unsigned i = 0; i < cfg->nfunctions && !ret; i++)
		ret = start_pool(s, &cfg->functions[i], console_dir);
	if (!ret) {
		ret = api_server_start_extended(&s->api, vmm, cfg->api, &ext);
		if (ret < 0)
			pr_err("serve: cannot listen on %s: %s", cfg->api, strerror(-ret));
	}
	if (!ret && cfg->tcp)
		ret = listen_tcp(s, cfg->tcp);
	if (ret < 0) {
		fn_server_stop(s);
		return ret;
	}
	*out = s;
	return 0;
}

void fn_server_stop(struct fn_server *s)
{
	if (!s)
		return;
	api_server_stop(s->api);
	for (unsigned i = 0; i < s->npools; i++) {
		uint64_t id = s->pools[i]->template->id;

		fn_pool_stop(s->pools[i]);
		vmm_remove(s->vmm, id);
	}
	free(s);
}
