#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#include "core/log.h"
#include "core/parse.h"
#include "fork/procfork.h"
#include "fork/shells.h"
#include "fork/vmm.h"
#include "server/api.h"
#include "tools/cli.h"
#include "tools/serve.h"
#include "vmm/vm.h"

/* What the signal thread is sent when the VMM no longer needs it. */
#define SIGNAL_THREAD_END SIGUSR1

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGNAL_THREAD_END);
}

int serve_wait_stop_signal(void)
{
	sigset_t set;
	int sig;

	stop_signals(&set);
	if (sigwait(&set, &sig) != 0 || sig == SIGNAL_THREAD_END)
		return 0;
	return sig;
}

void serve_signal_thread_end(pthread_t thread)
{
	pthread_kill(thread, SIGNAL_THREAD_END);
	pthread_join(thread, NULL);
}

const char serve_limits_help[] =
	"      --max-vms N       VMs this VMM holds at once, clones included (default %u)\n"
	"      --guest-fork-rate N  children all guests together may fork per second\n"
	"                        (default %u)\n"
	"      --max-guest-forks N  children guests may fork in all (default: no limit)\n"
	"      --max-clone-procs N  clones running in processes of their own (default %u)\n"
	"                        0 lifts a limit; over one, a fork fails with EDQUOT\n"
	"                        (EAGAIN for the rate), in the API and in the guest's\n"
	"                        FORK_RESULT; GET/PUT /v1/limits show and change them\n";

int serve_parse_limit(const char *cmd, int opt, const char *arg, struct vmm_limits *l)
{
	unsigned *field = opt == SERVE_OPT_MAX_VMS ? &l->max_vms :
			  opt == SERVE_OPT_FORK_RATE ? &l->guest_forks_per_s :
			  opt == SERVE_OPT_MAX_PROCS ? &l->max_clone_procs : NULL;
	uint64_t forks;

	if (field) {
		if (parse_count(arg, 0, UINT32_MAX, field) == 0)
			return 0;
	} else if (opt == SERVE_OPT_MAX_FORKS) {
		if (parse_u64(arg, 0, UINT64_MAX, &forks) == 0) {
			l->max_guest_forks = forks;
			return 0;
		}
	} else {
		return 1;
	}
	fprintf(stderr, "vm-fork %s: a limit must be a whole number, 0 for none: '%s'\n"
		"(see 'vm-fork %s --help')\n", cmd, arg, cmd);
	return CLI_EXIT_USAGE;
}

/* SIGINT, SIGTERM and SIGHUP stop every VM cleanly; they are handled by this thread alone. */
static void *signal_thread(void *arg)
{
	struct vmm *vmm = arg;
	int sig = serve_wait_stop_signal();

	if (sig) {
		pr_info("signal %d: stopping every VM", sig);
		vmm_stop_all(vmm, 128 + sig);
	}
	return NULL;
}

void serve_prepare_process(void)
{
	struct rlimit lim;
	sigset_t set;

	/* Every VM holds a few fds (VM, vCPUs, RAM, console): a thousand clones need more than 1024. */
	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &lim);
	}
	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* One per process, as the VMM is. */
const char *const *serve_worker_cmd(void)
{
	static const char *const levels[] = { "-q", NULL, "-v", "-vv" }; /* as enum log_level */
	static const char *cmd[] = {
		"/proc/self/exe", "clone-worker", "--socket", "3", NULL, NULL,
	};

	cmd[4] = levels[log_get_level()];
	return cmd;
}

static int start_services(struct vmm *vmm, struct vm *first, struct serve_options *o,
			  struct api_server **api)
{
	static char console[4200];
	int ret = 0;

	/* Clones' consoles go to files beside the API socket unless told otherwise. */
	if (!o->clone_console && o->api_path) {
		snprintf(console, sizeof(console), "file:%s.clone-%%u.log", o->api_path);
		o->clone_console = console;
	}
	vmm->clone_console = o->clone_console;
	vmm->worker_cmd = serve_worker_cmd();
	vmm_set_limits(vmm, &o->limits);
	if (o->shells)
		ret = shell_pool_create(&vmm->shells, &vmm->kvm, first->mem.size, first->ncpus,
					&first->cpuid_mask, o->shells);
	/* Shells premap the first VM's RAM, so even its first fork maps nothing. */
	if (!ret && o->shells)
		shell_pool_set_template(vmm->shells, &first->mem, NULL, 0);
	if (!ret && o->workers)
		ret = proc_pool_create(&vmm->procs, vmm->worker_cmd, first, o->workers);
	if (!ret && o->api_path)
		ret = api_server_start(api, vmm, o->api_path);
	return ret;
}

static int start_vms(struct vm **vms, unsigned n)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < n; i++)
		ret = vms[i]->threads_started ? vm_resume(vms[i]) : vm_start(vms[i]);
	return ret;
}

int serve_until_stopped(struct vmm *vmm, struct vm **vms, unsigned n, struct serve_options *o)
{
	struct api_server *api = NULL;
	pthread_t sig_thread;
	int ret = start_services(vmm, vms[0], o, &api);

	if (!ret && pthread_create(&sig_thread, NULL, signal_thread, vmm) == 0) {
		ret = start_vms(vms, n);
		vmm_wait_all_stopped(vmm, 0);
		serve_signal_thread_end(sig_thread);
	} else {
		ret = -1;
	}
	if (api)
		api_server_stop(api);
	if (ret < 0)
		return CLI_EXIT_ERROR;
	pr_info("VM %llu stopped: %s, status %d", (unsigned long long)vms[0]->id,
		vm_stop_reason_name(vm_stop_reason(vms[0])), vm_exit_code(vms[0]));
	return vm_exit_code(vms[0]) & 0xff;
}
