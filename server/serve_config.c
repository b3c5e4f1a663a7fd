/* The configuration of `vm-fork serve` (server/serve_config.h). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"
#include "server/api.h"
#include "server/serve_config.h"

#define DEFAULT_MEM        (256ULL << 20)
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_READY_MS   120000
#define MAX_TIMEOUT_MS     600000
#define DEFAULT_ANSWER     (1u << 20)
#define MAX_ANSWER         (64u << 20)
#define MAX_POOL           4096
#define MAX_CPUS           64

/* Where the reader is ("functions.words.pool"), and the first error. */
struct reader {
	char where[160];
	char *err;
	size_t errlen;
};

static int fail(struct reader *r, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(r->err, r->errlen, "%s%s%s: %s", r->where, *r->where && key ? "." : "",
		 key ? key : "", msg);
	return -EINVAL;
}

static int only_keys(struct reader *r, json_t *obj, const char *const *keys)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k = keys;

		while (*k && strcmp(*k, key))
			k++;
		if (!*k)
			return fail(r, key, "no such setting here");
	}
	return 0;
}

static int get_string(struct reader *r, json_t *obj, const char *key, bool required, char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? fail(r, key, "missing (a string)") : 0;
	if (!json_is_string(v) || !*json_string_value(v))
		return fail(r, key, "a string, not empty");
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int get_uint(struct reader *r, json_t *obj, const char *key, unsigned min, unsigned max,
		    unsigned *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(r, key, "an integer from %u to %u", min, max);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

/* Bytes: an integer, or a string as --mem takes it ("256M"). */
static int get_size(struct reader *r, json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		*out = (uint64_t)json_integer_value(v);
	else if (!json_is_string(v) || parse_size(json_string_value(v), out) < 0)
		return fail(r, key, "a size: bytes, or a string like \"256M\"");
	return 0;
}

static int get_cpus(struct reader *r, json_t *obj, const char *key, double *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > MAX_CPUS)
		return fail(r, key, "a number of CPUs from 0 (no limit) to %d", MAX_CPUS);
	*out = json_number_value(v);
	return 0;
}

static int read_pool(struct reader *r, json_t *obj, struct serve_pool *p)
{
	static const char *const keys[] = { "min_warm", "max_warm", "max_concurrent", "mem_limit",
					     "cpu_limit", NULL };
	int ret;

	*p = (struct serve_pool){ .max_warm = 8, .max_concurrent = 32 };
	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return fail(r, NULL, "an object");
	ret = only_keys(r, obj, keys);
	if (!ret)
		ret = get_uint(r, obj, "min_warm", 0, MAX_POOL, &p->min_warm);
	if (!ret)
		ret = get_uint(r, obj, "max_warm", 0, MAX_POOL, &p->max_warm);
	if (!ret)
		ret = get_uint(r, obj, "max_concurrent", 1, MAX_POOL, &p->max_concurrent);
	if (!ret)
		ret = get_size(r, obj, "mem_limit", &p->mem_limit);
	if (!ret)
		ret = get_cpus(r, obj, "cpu_limit", &p->cpu_limit);
	if (!ret && p->min_warm > p->max_warm)
		ret = fail(r, "min_warm", "%u is more than max_warm (%u)", p->min_warm, p->max_warm);
	return ret;
}

/* Booted from a kernel, or restored from a snapshot: one of the two, and what goes with it. */
static int read_template(struct reader *r, json_t *obj, struct serve_function *f)
{
	int ret = get_string(r, obj, "kernel", false, &f->kernel);

	if (!ret)
		ret = get_string(r, obj, "snapshot", false, &f->snapshot);
	if (!ret && !f->kernel == !f->snapshot)
		return fail(r, NULL, "give either \"kernel\" (a template to boot) or \"snapshot\"");
	if (!ret && f->snapshot)
		for (const char *const *k = (const char *const[]){ "initrd", "cmdline", "mem", "cpus",
								     NULL }; *k; k++)
			if (json_object_get(obj, *k))
				return fail(r, *k, "goes with \"kernel\", not with \"snapshot\"");
	if (!ret)
		ret = get_string(r, obj, "initrd", false, &f->initrd);
	if (!ret)
		ret = get_string(r, obj, "cmdline", false, &f->cmdline);
	if (!ret)
		ret = get_size(r, obj, "mem", &f->mem);
	if (!ret)
		ret = get_uint(r, obj, "cpus", 1, MAX_CPUS, &f->cpus);
	return ret;
}

static int read_function(struct reader *r, const char *name, json_t *obj, struct serve_function *f)
{
	static const char *const keys[] = { "kernel", "initrd", "cmdline", "mem", "cpus", "snapshot",
					     "vsock", "port", "ready_port", "ready_timeout_ms", "timeout_ms",
					     "max_answer", "pool", NULL };
	unsigned answer = DEFAULT_ANSWER;
	size_t at = strlen(r->where);
	int ret;

	*f = (struct serve_function){ .mem = DEFAULT_MEM, .cpus = 1, .timeout_ms = DEFAULT_TIMEOUT_MS,
				      .ready_timeout_ms = DEFAULT_READY_MS };
	if (!*name || strlen(name) >= SERVE_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz"
							      "0123456789_-") != strlen(name))
		return fail(r, name, "a function's name is 1 to %d of a-z, 0-9, _ and -",
			    SERVE_NAME_MAX - 1);
	strcpy(f->name, name);
	snprintf(r->where + at, sizeof(r->where) - at, ".%s", name);
	if (!json_is_object(obj))
		return fail(r, NULL, "an object");
	ret = only_keys(r, obj, keys);
	if (!ret)
		ret = read_template(r, obj, f);
	if (!ret)
		ret = get_string(r, obj, "vsock", true, &f->vsock);
	if (!ret && !strstr(f->vsock, "%u"))
		ret = fail(r, "vsock", "needs \"%%u\" (the clone's id): each clone has its own socket");
	if (!ret && !json_object_get(obj, "port"))
		ret = fail(r, "port", "missing: the guest's port the function listens on");
	if (!ret)
		ret = get_uint(r, obj, "port", 1, UINT32_MAX - 1, &f->port);
	if (!ret)
		ret = get_uint(r, obj, "ready_port", 1, UINT32_MAX - 1, &f->ready_port);
	if (!ret && f->kernel && !f->ready_port)
		ret = fail(r, "ready_port", "missing: the host port the guest connects to when ready");
	if (!ret)
		ret = get_uint(r, obj, "ready_timeout_ms", 1, MAX_TIMEOUT_MS, &f->ready_timeout_ms);
	if (!ret)
		ret = get_uint(r, obj, "timeout_ms", 1, MAX_TIMEOUT_MS, &f->timeout_ms);
	if (!ret)
		ret = get_uint(r, obj, "max_answer", 1, MAX_ANSWER, &answer);
	f->max_answer = answer;
	if (!ret) {
		size_t here = strlen(r->where);

		snprintf(r->where + here, sizeof(r->where) - here, ".pool");
		ret = read_pool(r, json_object_get(obj, "pool"), &f->pool);
	}
	r->where[at] = '\0';
	return ret;
}

static int read_functions(struct reader *r, json_t *obj, struct serve_config *cfg)
{
	const char *name;
	json_t *v;
	int ret = 0;

	if (!json_is_object(obj) || !json_object_size(obj) || json_object_size(obj) > SERVE_FUNCTIONS_MAX)
		return fail(r, "functions", "an object of 1 to %d functions, by name",
			    SERVE_FUNCTIONS_MAX);
	cfg->functions = calloc(json_object_size(obj), sizeof(*cfg->functions));
	if (!cfg->functions)
		return -ENOMEM;
	snprintf(r->where, sizeof(r->where), "functions");
	json_object_foreach(obj, name, v) {
		ret = read_function(r, name, v, &cfg->functions[cfg->nfunctions++]);
		if (ret)
			break;
	}
	return ret;
}

static bool loopback(const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t len;

	return api_loopback_addr(addr, &sa, &len) == 0;
}

static int read_config(struct reader *r, json_t *root, struct serve_config *cfg)
{
	static const char *const keys[] = { "api", "tcp", "functions", NULL };
	int ret;

	if (!json_is_object(root))
		return fail(r, NULL, "the configuration is a JSON object");
	ret = only_keys(r, root, keys);
	if (!ret)
		ret = get_string(r, root, "api", true, &cfg->api);
	if (!ret)
		ret = get_string(r, root, "tcp", false, &cfg->tcp);
	if (!ret && cfg->tcp && !loopback(cfg->tcp))
		ret = fail(r, "tcp", "a loopback address and port, as 127.0.0.1:8080 or [::1]:8080 "
			   "(the functions' routes say nothing of who calls)");
	if (!ret)
		ret = read_functions(r, json_object_get(root, "functions"), cfg);
	return ret;
}

static int parse(json_t *root, const json_error_t *jerr, struct serve_config *cfg, char *err,
		 size_t errlen)
{
	struct reader r = { .err = err, .errlen = errlen };
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!root) {
		snprintf(err, errlen, "line %d, column %d: %s", jerr->line, jerr->column, jerr->text);
		return jerr->position == 0 && strstr(jerr->text, "unable to open") ? -ENOENT : -EINVAL;
	}
	ret = read_config(&r, root, cfg);
	json_decref(root);
	if (ret)
		serve_config_free(cfg);
	return ret;
}

int serve_config_parse(const char *text, struct serve_config *cfg, char *err, size_t errlen)
{
	json_error_t jerr;

	return parse(json_loads(text, JSON_REJECT_DUPLICATES, &jerr), &jerr, cfg, err, errlen);
}

int serve_config_load(const char *path, struct serve_config *cfg, char *err, size_t errlen)
{
	json_error_t jerr;

	return parse(json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), &jerr, cfg, err, errlen);
}

void serve_config_free(struct serve_config *cfg)
{
	for (unsigned i = 0; cfg->functions && i < cfg->nfunctions; i++) {
		struct serve_function *f = &cfg->functions[i];

		free(f->kernel);
		free(f->initrd);
		free(f->cmdline);
		free(f->snapshot);
		free(f->vsock);
	}
	free(cfg->functions);
	free(cfg->api);
	free(cfg->tcp);
	memset(cfg, 0, sizeof(*cfg));
}

const struct serve_function *serve_config_function(const struct serve_config *cfg,
						   const char *name)
{
	for (unsigned i = 0; i < cfg->nfunctions; i++)
		if (!strcmp(cfg->functions[i].name, name))
			return &cfg->functions[i];
	return NULL;
}
