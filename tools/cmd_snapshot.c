/*
 * vm-fork snapshot: write a running VM's snapshot to a directory (through the
 * control API, while the VM runs on); vm-fork restore: start VMs from one.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/parse.h"
#include "fork/snapdir.h"
#include "fork/vmm.h"
#include "server/api.h"
#include "tools/api_client.h"
#include "tools/cli.h"
#include "tools/serve.h"
#include "vmm/vm.h"

void cmd_snapshot_usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork snapshot --api PATH [--id ID] [--diff BASE_DIR] DIR\n"
		"\n"
		"Write VM ID's snapshot (default 0) to DIR, which must not exist: its state\n"
		"(DIR/state.dtb, a device tree: dtc -I dtb -O dts shows it) and its memory\n"
		"(DIR/mem, sparse). The VM pauses only as long as a fork pauses it; the files\n"
		"are written while it runs on, into a temporary name renamed to DIR at the end.\n"
		"--diff BASE_DIR writes only the pages changed since BASE_DIR, the snapshot the VM\n"
		"was restored from; restoring it needs BASE_DIR too.\n");
}

void cmd_restore_usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork restore DIR [--count N] [--api PATH] [--console SPEC]\n"
		"                          [--clone-console SPEC] [--shells N] [device options] [-v]\n"
		"\n"
		"Start N VMs (default 1) from the snapshot in DIR, each with its own identity,\n"
		"all mapping DIR/mem copy-on-write (pages are read lazily, shared in the page\n"
		"cache). Everything is checked first: format version, checksum, sizes against\n"
		"the memory file, CPUID against this host. Runs until every VM stopped; exits\n"
		"with the first one's status.\n"
		"\n"
		"  -n, --count N         how many VMs to start, 1 to 4096 (default 1)\n"
		"  -a, --api PATH        serve the control API (REST, JSON) on a Unix socket, as\n"
		"                        'vm-fork run --api' does: fork, pause, snapshot the\n"
		"                        restored VMs with 'vm-fork fork|pause|snapshot --api PATH'\n"
		"      --console SPEC    console of the first VM (default stdio): stdio, none,\n"
		"                        file:PATH, socket:PATH or fd:N\n"
		"      --clone-console SPEC  %%u = the VM's id: console of the other restored\n"
		"                        VMs (default none) and of clones forked through the API\n"
		"                        (default with --api: file:PATH.clone-%%u.log, else none)\n"
		"      --shells N        keep N warm shells (pre-made VMs, 0 to 4096) so forks\n"
		"                        through the API only load state\n"
		"      --kvm PATH        the KVM device (default /dev/kvm)\n"
		"  -v, --verbose         more messages (repeat for debug)\n"
		"  -h, --help            this text\n"
		"\n"
		"The snapshot's devices come back as they were; a device option turns one on or\n"
		"points it elsewhere (a new vsock PATH, a TAP).\n");
	fputs(cli_devices_help, out);
	fputs("\nLimits, as for 'vm-fork run':\n", out);
	fprintf(out, serve_limits_help, VMM_DEFAULT_MAX_VMS, VMM_DEFAULT_GUEST_FORKS_PER_S,
		VMM_DEFAULT_MAX_CLONE_PROCS);
}

static void print_progress(const char *dir, json_t *j, bool final)
{
	json_int_t done = json_integer_value(json_object_get(j, "bytes_done"));
	json_int_t total = json_integer_value(json_object_get(j, "bytes_total"));

	if (final)
		printf("snapshot %s written: %" JSON_INTEGER_FORMAT " MiB of memory data, VM paused "
		       "%" JSON_INTEGER_FORMAT " us\n", dir, done >> 20,
		       json_integer_value(json_object_get(j, "paused_us")));
	else
		printf("snapshot %s: %" JSON_INTEGER_FORMAT "%% (%" JSON_INTEGER_FORMAT " of %"
		       JSON_INTEGER_FORMAT " MiB)\n", dir, total ? done * 100 / total : 0, done >> 20,
		       total >> 20);
	fflush(stdout);
}

/* Poll the job; print progress about once a second while it lasts. */
static int follow_job(const char *sock, json_int_t job, const char *dir)
{
	char path[64];
	struct timespec tick = { 0, 50 * 1000 * 1000 };

	snprintf(path, sizeof(path), "/v1/snapshots/%" JSON_INTEGER_FORMAT, job);
	for (unsigned i = 1;; i++) {
		json_t *j = api_call_json("snapshot", sock, "GET", path, NULL);
		int ret;

		if (!j)
			return CLI_EXIT_ERROR;
		if (json_is_true(json_object_get(j, "done"))) {
			ret = (int)json_integer_value(json_object_get(j, "result"));
			if (ret)
				fprintf(stderr, "vm-fork snapshot: %s: %s\n", dir, str_of(j, "error"));
			else
				print_progress(dir, j, true);
			json_decref(j);
			return ret ? CLI_EXIT_ERROR : 0;
		}
		if (i % 20 == 0)
			print_progress(dir, j, false);
		json_decref(j);
		nanosleep(&tick, NULL);
	}
}

static int snapshot_usage_error(const char *what)
{
	fprintf(stderr, "vm-fork snapshot: %s\n(see 'vm-fork snapshot --help')\n", what);
	return CLI_EXIT_USAGE;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "api", required_argument, NULL, 'a' }, { "id", required_argument, NULL, 'i' },
		{ "diff", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *base = NULL, *id = "0";
	char path[64], *body;
	json_t *req, *ans;
	int c;

	while ((c = getopt_long(argc, argv, "+:a:i:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a': sock = optarg; break;
		case 'i': id = optarg; break;
		case 'd': base = optarg; break;
		case 'h': cmd_snapshot_usage(stdout); return 0;
		default: return cli_bad_option("snapshot", argv, opts, c);
		}
	}
	if (!sock || optind != argc - 1)
		return snapshot_usage_error("give --api PATH and one DIR");
	if (strspn(id, "0123456789") != strlen(id) || !*id || strlen(id) > 19)
		return snapshot_usage_error("--id takes a VM id (a number)");
	snprintf(path, sizeof(path), "/v1/vms/%s/snapshot", id);
	req = json_pack("{s:s}", "dir", argv[optind]);
	if (base)
		json_object_set_new(req, "diff_base", json_string(base));
	body = json_dumps(req, JSON_COMPACT);
	ans = api_call_json("snapshot", sock, "PUT", path, body);
	free(body);
	json_decref(req);
	if (!ans)
		return CLI_EXIT_ERROR;
	c = follow_job(sock, json_integer_value(json_object_get(ans, "job")), argv[optind]);
	json_decref(ans);
	return c;
}

struct restore_options {
	const char *dir, *console, *kvm_path;
	unsigned count;
	struct serve_options serve;
	struct device_config devices; /* devices turned on or re-pointed over the snapshot's */
};

static int restore_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "vm-fork restore: ");
	fprintf(stderr, what, arg);
	fprintf(stderr, "\n(see 'vm-fork restore --help')\n");
	return CLI_EXIT_USAGE;
}

static int parse_restore(int argc, char **argv, struct restore_options *o)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' }, { "api", required_argument, NULL, 'a' },
		{ "console", required_argument, NULL, 'c' },
		{ "clone-console", required_argument, NULL, 'C' },
		{ "shells", required_argument, NULL, 's' }, { "kvm", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },
		SERVE_LIMIT_OPTIONS, CLI_DEVICE_OPTIONS, { NULL, 0, NULL, 0 },
	};
	int c, level = LOG_WARN, ret, index;

	vmm_limits_default(&o->serve.limits);
	while ((c = getopt_long(argc, argv, ":n:a:vh", opts, &index)) != -1) {
		ret = serve_parse_limit("restore", c, optarg, &o->serve.limits);
		if (ret != 1) {
			if (ret)
				return ret;
			continue;
		}
		switch (c) {
		case 'n':
			if (parse_count(optarg, 1, 4096, &o->count) < 0)
				return restore_usage_error("--count '%s': give 1 to 4096", optarg);
			break;
		case 'a': o->serve.api_path = optarg; break;
		case 'c': o->console = optarg; break;
		case 'C': o->serve.clone_console = optarg; break;
		case 'K': o->kvm_path = optarg; break;
		case 's':
			if (parse_count(optarg, 0, 4096, &o->serve.shells) < 0)
				return restore_usage_error("--shells '%s': give 0 to 4096", optarg);
			break;
		case 'v': level = level < LOG_DEBUG ? level + 1 : LOG_DEBUG; break;
		case 'h': cmd_restore_usage(stdout); exit(0);
		case CLI_DEVICE_OPTION:
			ret = cli_device_option("restore", opts[index].name, optarg, &o->devices);
			if (ret)
				return ret;
			break;
		default: return cli_bad_option("restore", argv, opts, c);
		}
	}
	if (optind != argc - 1)
		return restore_usage_error("%s", "give one snapshot DIR");
	o->dir = argv[optind];
	log_set_level((enum log_level)level);
	return 0;
}

static int restore_all(struct vmm *vmm, struct restore_options *o)
{
	struct snapshot_image img;
	struct vm **vms = calloc(o->count, sizeof(*vms));
	int ret = vms ? snapshot_open(o->dir, vmm->kvm.supported_cpuid, &img) : -ENOMEM;

	/* A device option wins over what the snapshot had: as if it had been saved so. */
	for (unsigned i = 0; !ret && i < DEVICE_MAX; i++) {
		if (!o->devices.args[i])
			continue;
		img.state.devs[i].on = true;
		snprintf(img.state.devs[i].arg, sizeof(img.state.devs[i].arg), "%s", o->devices.args[i]);
	}
	/* --console for the first, the clone spec (its "%u" the VM's id) for the rest. */
	for (unsigned i = 0; !ret && i < o->count; i++)
		ret = vm_restore(vmm, &img, i + 1,
				 i == 0 ? (o->console ? o->console : "stdio")
					: (o->serve.clone_console ? o->serve.clone_console : "none"),
				 &vms[i]);
	if (ret >= 0)
		snapshot_close(&img);
	if (ret < 0) {
		fprintf(stderr, "vm-fork restore: %s: %s\n", o->dir, strerror(-ret));
		free(vms);
		return CLI_EXIT_ERROR;
	}
	ret = serve_until_stopped(vmm, vms, o->count, &o->serve);
	free(vms);
	return ret;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_options o = { .count = 1 };
	struct vmm vmm;
	int ret = parse_restore(argc, argv, &o);

	if (ret)
		return ret;
	serve_prepare_process();
	if (vmm_init(&vmm, o.kvm_path) < 0)
		return CLI_EXIT_ERROR;
	ret = restore_all(&vmm, &o);
	vmm_destroy(&vmm);
	return ret;
}
