/*
 * vm-fork fork, info, pause, resume, stop: clients of a running VMM's
 * control API (server/api.h), HTTP over its Unix socket with libcurl.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/device.h"
#include "core/parse.h"
#include "fork/fork.h"
#include "tools/api_client.h"
#include "tools/cli.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define FORK_MAX_COUNT_STR STR(FORK_MAX_COUNT)

/* What one command does; the option parser and the request are shared. */
struct api_cmd {
	const char *name;
	const char *method;
	const char *action;          /* "/v1/vms/ID/<action>"; NULL: no action */
	bool needs_id;
	bool fork_opts;              /* takes --count and --paused */
	const char *what;            /* a sentence for --help */
};

struct api_opts {
	const char *socket;
	uint64_t id;
	bool have_id, paused, json, processes;
	unsigned count;
	unsigned ndev;               /* --device OPTION=ARG, in the order given */
	char *dev[DEVICE_MAX];
};

static const struct api_cmd fork_cmd = {
	"fork", "PUT", "fork", false, true,
	"Fork a running VM into clones, copy-on-write; prints each clone's id and console.",
};
static const struct api_cmd info_cmd = {
	"info", "GET", NULL, false, false,
	"Show every VM of a running VMM, or one with --id.",
};
static const struct api_cmd pause_cmd = {
	"pause", "PUT", "pause", true, false, "Pause a running VM.",
};
static const struct api_cmd resume_cmd = {
	"resume", "PUT", "resume", true, false, "Resume a paused VM.",
};
static const struct api_cmd stop_cmd = {
	"stop", "PUT", "stop", true, false,
	"Stop a VM (it stays listed, stopped, until its VMM removes it).",
};

static void usage(const struct api_cmd *cmd, FILE *out)
{
	fprintf(out, "usage: vm-fork %s --api PATH %s%s[--json]\n\n%s\n\n", cmd->name,
		cmd->needs_id ? "--id ID " : "[--id ID] ",
		cmd->fork_opts ? "[--count N] [--paused] [--processes] [--device OPT=ARG]... " : "",
		cmd->what);
	fprintf(out, "  -a, --api PATH   the VMM's control socket\n");
	if (cmd->fork_opts)
		fprintf(out, "  -i, --id ID      the VM to fork (default 0, the first booted VM)\n"
			"  -n, --count N    how many clones, 1 to %d (default 1)\n"
			"      --paused     leave the clones paused ('vm-fork resume' starts them)\n"
			"      --processes  run each clone in a process of its own (prints its pid)\n"
			"      --device OPT=ARG  the clones' own backend for a device the VM has on,\n"
			"                   in place of its own: net=tap:NAME, vsock=PATH (%%u: the\n"
			"                   clone's id); repeat for more devices\n",
			FORK_MAX_COUNT);
	else
		fprintf(out, "  -i, --id ID      the VM%s\n", cmd->needs_id ? "" : " (default: all)");
	fprintf(out, "      --json       print the API's JSON answer as it is\n"
		"  -h, --help       this text\n\n"
		"Exit status: 0 done, 1 the VMM refused or could not be reached, 64 bad command line.\n");
}

void cmd_fork_usage(FILE *out) { usage(&fork_cmd, out); }
void cmd_info_usage(FILE *out) { usage(&info_cmd, out); }
void cmd_pause_usage(FILE *out) { usage(&pause_cmd, out); }
void cmd_resume_usage(FILE *out) { usage(&resume_cmd, out); }
void cmd_stop_usage(FILE *out) { usage(&stop_cmd, out); }

static int bad_usage(const struct api_cmd *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "vm-fork %s: ", cmd->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'vm-fork %s --help')\n", cmd->name);
	return CLI_EXIT_USAGE;
}

static int parse_id(const char *s, uint64_t *id)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*id = strtoull(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

static int parse_one(const struct api_cmd *cmd, int c, struct api_opts *o)
{
	if ((c == 'n' || c == 'P' || c == 'R' || c == 'D') && !cmd->fork_opts)
		return bad_usage(cmd, "%s", "--count, --paused, --processes and --device are options "
				 "of 'vm-fork fork'");
	switch (c) {
	case 'a': o->socket = optarg; return 0;
	case 'j': o->json = true; return 0;
	case 'P': o->paused = true; return 0;
	case 'R': o->processes = true; return 0;
	case 'D':
		if (!strchr(optarg, '=') || optarg == strchr(optarg, '=') || o->ndev >= DEVICE_MAX)
			return bad_usage(cmd, "--device '%s': give OPTION=ARGUMENT, e.g. net=tap:vm%%u",
					 optarg);
		o->dev[o->ndev++] = optarg;
		return 0;
	case 'i':
		o->have_id = true;
		if (parse_id(optarg, &o->id))
			return bad_usage(cmd, "--id '%s' is not a VM id (a number)", optarg);
		return 0;
	case 'n':
		if (parse_count(optarg, 1, FORK_MAX_COUNT, &o->count) < 0)
			return bad_usage(cmd, "--count '%s': give a number from 1 to "
					 FORK_MAX_COUNT_STR, optarg);
		return 0;
	case 'h': usage(cmd, stdout); exit(0);
	}
	return bad_usage(cmd, "%s", "unknown option");
}

static int parse_args(const struct api_cmd *cmd, int argc, char **argv, struct api_opts *o)
{
	static const struct option longopts[] = {
		{ "api", required_argument, NULL, 'a' }, { "id", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' }, { "paused", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
		{ "processes", no_argument, NULL, 'R' }, { "device", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	while ((c = getopt_long(argc, argv, "+:a:i:n:h", longopts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return cli_bad_option(cmd->name, argv, longopts, c);
		if ((ret = parse_one(cmd, c, o)))
			return ret;
	}
	if (optind < argc)
		return bad_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (!o->socket)
		return bad_usage(cmd, "%s", "--api PATH (the VMM's control socket) is required");
	if (cmd->needs_id && !o->have_id)
		return bad_usage(cmd, "%s", "--id ID is required");
	return 0;
}

/* ---- HTTP over the Unix socket ---- */


/* ---- Printing ---- */

static void print_vm_line(json_t *vm)
{
	json_int_t mem = json_integer_value(json_object_get(vm, "mem_bytes"));
	json_int_t own = json_integer_value(json_object_get(vm, "private_bytes"));

	printf("%-6" JSON_INTEGER_FORMAT " %-6" JSON_INTEGER_FORMAT " %-4" JSON_INTEGER_FORMAT
	       " %-8s %-4" JSON_INTEGER_FORMAT " %6" JSON_INTEGER_FORMAT "M %8" JSON_INTEGER_FORMAT
	       "K %s",
	       json_integer_value(json_object_get(vm, "id")),
	       json_integer_value(json_object_get(vm, "parent_id")),
	       json_integer_value(json_object_get(vm, "generation")), str_of(vm, "state"),
	       json_integer_value(json_object_get(vm, "cpus")), mem >> 20, own >> 10,
	       str_of(vm, "console"));
	if (json_object_get(vm, "stop_reason"))
		printf("  (%s, exit status %" JSON_INTEGER_FORMAT ")", str_of(vm, "stop_reason"),
		       json_integer_value(json_object_get(vm, "exit_status")));
	printf("\n");
}

static void print_vm_list(json_t *list)
{
	size_t i;
	json_t *vm;

	printf("%-6s %-6s %-4s %-8s %-4s %7s %9s %s\n", "ID", "PARENT", "GEN", "STATE", "CPUS", "MEM",
	       "PRIVATE", "CONSOLE");
	json_array_foreach(list, i, vm)
		print_vm_line(vm);
}

/* Clones in their own processes: one line each under the VMs. */
static void print_proc_list(json_t *list)
{
	size_t i;
	json_t *p;

	if (!json_array_size(list))
		return;
	printf("%-6s %-6s %-8s %-8s %s\n", "ID", "PARENT", "STATE", "PID",
	       "(clones in their own processes)");
	json_array_foreach(list, i, p) {
		printf("%-6" JSON_INTEGER_FORMAT " %-6" JSON_INTEGER_FORMAT " %-8s %-8" JSON_INTEGER_FORMAT,
		       json_integer_value(json_object_get(p, "id")),
		       json_integer_value(json_object_get(p, "parent_id")), str_of(p, "state"),
		       json_integer_value(json_object_get(p, "pid")));
		if (json_object_get(p, "exit_status"))
			printf(" exit status %" JSON_INTEGER_FORMAT,
			       json_integer_value(json_object_get(p, "exit_status")));
		printf("\n");
	}
}

static void print_object(json_t *obj)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (json_is_integer(v))
			printf("%-12s %" JSON_INTEGER_FORMAT "\n", key, json_integer_value(v));
		else if (json_is_string(v))
			printf("%-12s %s\n", key, json_string_value(v));
	}
}

static void print_fork(json_t *ans)
{
	json_t *stats = json_object_get(ans, "stats"), *child;
	json_t *children = json_object_get(ans, "children");
	size_t i;

	json_array_foreach(children, i, child) {
		printf("clone %" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(child, "id")));
		if (json_object_get(child, "pid"))
			printf(" pid %" JSON_INTEGER_FORMAT,
			       json_integer_value(json_object_get(child, "pid")));
		printf(" console %s\n", str_of(child, "console"));
	}
	printf("forked VM %" JSON_INTEGER_FORMAT " into %zu clone(s) in %" JSON_INTEGER_FORMAT
	       " us (parent paused %" JSON_INTEGER_FORMAT " us, %" JSON_INTEGER_FORMAT
	       " pages copied%s)\n", json_integer_value(json_object_get(ans, "parent")),
	       json_array_size(children), json_integer_value(json_object_get(stats, "total_us")),
	       json_integer_value(json_object_get(stats, "paused_us")),
	       json_integer_value(json_object_get(stats, "pages_copied")),
	       json_is_true(json_object_get(stats, "parent_moved")) ? ", parent moved into a shell"
								   : "");
}

static void print_answer(const struct api_cmd *cmd, const struct api_opts *o, json_t *ans)
{
	if (cmd == &fork_cmd) {
		print_fork(ans);
	} else if (json_is_array(json_object_get(ans, "vms"))) {
		print_vm_list(json_object_get(ans, "vms"));
		print_proc_list(json_object_get(ans, "processes"));
	} else if (cmd == &info_cmd) {
		print_object(ans);
	} else {
		/* A VM's answer describes it; a clone process's has only its id and state. */
		printf("%s %" PRIu64 ": %s\n", json_object_get(ans, "cpus") ? "VM" : "clone process",
		       o->id, str_of(ans, "state"));
	}
}

/* ---- The commands ---- */

/* The fork request: {"count", "start", "processes", "devices": {OPTION: ARG}} (malloc'd). */
static char *fork_body(const struct api_opts *o)
{
	json_t *req = json_pack("{s:I, s:b}", "count", (json_int_t)o->count, "start", !o->paused);
	json_t *devices = o->ndev ? json_object() : NULL;
	char *body;

	if (req && o->processes)
		json_object_set_new(req, "processes", json_true());
	for (unsigned i = 0; devices && i < o->ndev; i++) {
		char *eq = strchr(o->dev[i], '=');

		*eq = '\0';
		json_object_set_new(devices, o->dev[i], json_string(eq + 1));
		*eq = '=';
	}
	if (req && devices)
		json_object_set_new(req, "devices", devices);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	return body;
}

static int api_main(const struct api_cmd *cmd, int argc, char **argv)
{
	struct api_opts o = { .count = 1 };
	char path[128], *body = NULL;
	struct reply r;
	json_t *ans;
	int ret = parse_args(cmd, argc, argv, &o);

	if (ret)
		return ret;
	if (cmd->action)
		snprintf(path, sizeof(path), "/v1/vms/%" PRIu64 "/%s", o.id, cmd->action);
	else if (o.have_id)
		snprintf(path, sizeof(path), "/v1/vms/%" PRIu64, o.id);
	else
		snprintf(path, sizeof(path), "/v1/vms");
	if (cmd->fork_opts && !(body = fork_body(&o))) {
		fprintf(stderr, "vm-fork %s: out of memory\n", cmd->name);
		return CLI_EXIT_ERROR;
	}
	ret = api_request(cmd->name, o.socket, cmd->method, path, body ? body : "", &r);
	free(body);
	if (ret < 0)
		return CLI_EXIT_ERROR;
	ans = parse_reply(cmd->name, &r);
	if (ans && o.json)
		fwrite(r.body, 1, r.len, stdout);
	else if (ans)
		print_answer(cmd, &o, ans);
	free(r.body);
	ret = ans ? 0 : CLI_EXIT_ERROR;
	json_decref(ans);
	return ret;
}

int cmd_fork(int argc, char **argv) { return api_main(&fork_cmd, argc, argv); }
int cmd_info(int argc, char **argv) { return api_main(&info_cmd, argc, argv); }
int cmd_pause(int argc, char **argv) { return api_main(&pause_cmd, argc, argv); }
int cmd_resume(int argc, char **argv) { return api_main(&resume_cmd, argc, argv); }
int cmd_stop(int argc, char **argv) { return api_main(&stop_cmd, argc, argv); }
