/*
 * vm-fork serve --config FILE: the serverless pool (server/fn_server.h).
 * Every function's template is started, then its invocations are served on
 * the configuration's API socket, beside the control API, until SIGINT,
 * SIGTERM or SIGHUP: then the server drains and every VM is stopped.
 */
#include <getopt.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fork/vmm.h"
#include "server/fn_server.h"
#include "server/serve_config.h"
#include "tools/cli.h"
#include "tools/serve.h"

struct serve_cmd {
	const char *config, *kvm_path, *console_dir, *clone_console;
	struct vmm_limits limits;
	struct vmm vmm;
	sem_t stop;
	atomic_bool serving;
	int signal;
};

void cmd_serve_usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork serve --config FILE [options]\n"
		"Serve functions from warm VM clones: each request to\n"
		"  POST /v1/functions/NAME/invoke\n"
		"on the configuration's API socket runs in a fresh clone of the function's\n"
		"template, which is gone afterwards; GET /metrics shows the figures, and the\n"
		"control API (/v1/vms, ...) is there too. See docs/serve.md for FILE.\n"
		"      --config FILE     the functions and their pools (JSON)\n"
		"      --console-dir DIR write each template's console to DIR/NAME.log\n"
		"      --clone-console SPEC  the clones' consoles (default: none; %%u: clone id)\n"
		"      --kvm PATH        the KVM device (default /dev/kvm)\n"
		"  -v, --verbose         say more (twice: debug)\n"
		"  -q, --quiet           errors only\n");
	fprintf(out, serve_limits_help, VMM_DEFAULT_MAX_VMS, VMM_DEFAULT_GUEST_FORKS_PER_S,
		VMM_DEFAULT_MAX_CLONE_PROCS);
}

static int parse_args(int argc, char **argv, struct serve_cmd *c)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "kvm", required_argument, NULL, 'K' },
		{ "console-dir", required_argument, NULL, 'D' },
		{ "clone-console", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' }, SERVE_LIMIT_OPTIONS, { NULL, 0, NULL, 0 },
	};
	int opt, level = LOG_INFO, ret;

	while ((opt = getopt_long(argc, argv, "+:c:vqh", longopts, NULL)) != -1) {
		ret = serve_parse_limit("serve", opt, optarg, &c->limits);
		if (ret != 1) {
			if (ret)
				return ret;
			continue;
		}
		switch (opt) {
		case 'c': c->config = optarg; break;
		case 'K': c->kvm_path = optarg; break;
		case 'D': c->console_dir = optarg; break;
		case 'L': c->clone_console = optarg; break;
		case 'v': level = level < LOG_DEBUG ? level + 1 : LOG_DEBUG; break;
		case 'q': level = LOG_ERROR; break;
		case 'h': cmd_serve_usage(stdout); exit(0);
		default: return cli_bad_option("serve", argv, longopts, opt);
		}
	}
	if (optind < argc || !c->config) {
		fprintf(stderr, "vm-fork serve: %s\n(see 'vm-fork serve --help')\n",
			optind < argc ? "unexpected argument" : "--config FILE is required");
		return CLI_EXIT_USAGE;
	}
	log_set_level((enum log_level)level);
	return 0;
}

/* A stop signal while templates start stops their VMs, so that starting ends at once. */
static void *signal_thread(void *arg)
{
	struct serve_cmd *c = arg;

	c->signal = serve_wait_stop_signal();
	if (c->signal && !atomic_load(&c->serving))
		vmm_stop_all(&c->vmm, 128 + c->signal);
	sem_post(&c->stop);
	return NULL;
}

static int serve(struct serve_cmd *c, const struct serve_config *cfg)
{
	struct fn_server *server = NULL;
	pthread_t sig_thread;
	int ret;

	c->vmm.clone_console = c->clone_console ? c->clone_console : "none";
	c->vmm.worker_cmd = serve_worker_cmd(); /* clones in processes: pools with limits */
	vmm_set_limits(&c->vmm, &c->limits);
	sem_init(&c->stop, 0, 0);
	if (pthread_create(&sig_thread, NULL, signal_thread, c))
		return CLI_EXIT_ERROR;
	ret = fn_server_start(&server, &c->vmm, cfg, c->console_dir);
	atomic_store(&c->serving, true);
	if (!ret) {
		pr_info("serving %u function(s) on %s", cfg->nfunctions, cfg->api);
		while (sem_wait(&c->stop) < 0)
			;
		pr_info("signal %d: stopping", c->signal);
	}
	fn_server_stop(server);
	serve_signal_thread_end(sig_thread);
	sem_destroy(&c->stop);
	return ret < 0 ? CLI_EXIT_ERROR : 0;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_cmd c = { 0 };
	struct serve_config cfg;
	char err[512];
	int ret;

	serve_prepare_process();
	vmm_limits_default(&c.limits);
	ret = parse_args(argc, argv, &c);
	if (ret)
		return ret;
	if (serve_config_load(c.config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "vm-fork serve: %s: %s\n", c.config, err);
		serve_config_free(&cfg);
		return CLI_EXIT_USAGE;
	}
	if (vmm_init(&c.vmm, c.kvm_path) < 0) {
		serve_config_free(&cfg);
		return CLI_EXIT_ERROR;
	}
	ret = serve(&c, &cfg);
	vmm_stop_all(&c.vmm, 0);
	vmm_wait_all_stopped(&c.vmm, 10000);
	vmm_destroy(&c.vmm);
	serve_config_free(&cfg);
	return ret;
}
