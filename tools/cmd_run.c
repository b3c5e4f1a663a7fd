/* vm-fork run: boot a VM and run it until the guest exits. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tools/cli.h"
#include "vmm/log.h"
#include "vmm/parse.h"
#include "snapshot/shells.h"
#include "vmm/api.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#define DEFAULT_MEM (256 * MiB)

struct run_options {
	struct vm_config vm;
	const char *kvm_path;
	const char *api_path;
	const char *clone_console;
	char clone_console_buf[4200];
	unsigned shells;
};

void cmd_run_usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork run --kernel FILE [options]\n"
		"\n"
		"Boot a VM and run it until the guest exits; vm-fork exits with the guest's status.\n"
		"With clones (forked through the API or by the guest), it runs until every VM stopped.\n"
		"\n"
		"  -k, --kernel FILE     ELF64 executable (vmlinux, our guests) or bzImage\n"
		"  -i, --initrd FILE     initial ramdisk\n"
		"  -c, --cmdline STR     kernel command line\n"
		"  -m, --mem SIZE        guest RAM, 16M to 1T in steps of 2M (default 256M);\n"
		"                        K, M, G, T suffixes are powers of 1024\n"
		"      --mem-file PATH   keep guest RAM in PATH instead of an anonymous memfd\n"
		"  -p, --cpus N          vCPUs, 1 to %d (default 1)\n"
		"      --console SPEC    where COM1 and guest log lines go, and input comes from:\n"
		"                        stdio (default; Ctrl-A x quits), none, file:PATH,\n"
		"                        socket:PATH (listens on a Unix socket), fd:N\n"
		"      --cpuid-mask LIST hide CPU features: names (avx512f,x2apic,...) or\n"
		"                        LEAF[.SUBLEAF]:REG:BIT, comma separated ('help' lists names)\n"
		"      --api PATH        serve the control API (REST, JSON) on a Unix socket;\n"
		"                        'vm-fork fork --api PATH' and curl --unix-socket use it\n"
		"      --shells N        keep N warm shells (pre-made VMs) so forks only load state\n"
		"      --clone-console SPEC  console of each clone, %%u = its id (default with\n"
		"                        --api: file:PATH.clone-%%u.log, else none)\n"
		"      --kvm PATH        the KVM device (default /dev/kvm)\n"
		"  -v, --verbose         more messages (repeat for debug)\n"
		"  -q, --quiet           errors only\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: the guest's own status when it writes the control device's EXIT\n"
		"register; 0 when it resets or powers off; 1 when the VMM fails or KVM cannot\n"
		"go on; 2 on a triple fault; 128+N when stopped by signal N; 64 on a bad command line.\n",
		VM_MAX_CPUS);
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "vm-fork run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'vm-fork run --help')\n");
	return CLI_EXIT_USAGE;
}

static int parse_mem(const char *arg, uint64_t *size)
{
	int ret = parse_size(arg, size);

	if (ret < 0)
		return bad_usage("--mem '%s' is not a size (try 64M, 2G)", arg);
	if (*size < VM_MIN_MEM || *size > VM_MAX_MEM)
		return bad_usage("--mem %s: must be between 16M and 1T", arg);
	if (*size % (2 * MiB))
		return bad_usage("--mem %s: must be a multiple of 2M", arg);
	return 0;
}

static int parse_run_args(int argc, char **argv, struct run_options *o)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
		{ "mem-file", required_argument, NULL, 'M' }, { "cpus", required_argument, NULL, 'p' },
		{ "console", required_argument, NULL, 'C' }, { "cpuid-mask", required_argument, NULL, 'X' },
		{ "kvm", required_argument, NULL, 'K' }, { "verbose", no_argument, NULL, 'v' },
		{ "api", required_argument, NULL, 'A' }, { "shells", required_argument, NULL, 'S' },
		{ "clone-console", required_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, level = LOG_WARN;

	while ((c = getopt_long(argc, argv, "+k:i:c:m:p:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->vm.kernel = optarg; break;
		case 'i': o->vm.initrd = optarg; break;
		case 'c': o->vm.cmdline = optarg; break;
		case 'M': o->vm.mem_path = optarg; break;
		case 'C': o->vm.console = optarg; break;
		case 'X':
			if (!strcmp(optarg, "help")) {
				printf("CPU features --cpuid-mask knows: %s\n", cpuid_feature_names());
				exit(0);
			}
			o->vm.cpuid_mask = optarg;
			break;
		case 'K': o->kvm_path = optarg; break;
		case 'A': o->api_path = optarg; break;
		case 'L': o->clone_console = optarg; break;
		case 'S':
			if (parse_count(optarg, 0, 4096, &o->shells) < 0)
				return bad_usage("--shells '%s': give a number from 0 to 4096", optarg);
			break;
		case 'v': level = level < LOG_DEBUG ? level + 1 : LOG_DEBUG; break;
		case 'q': level = LOG_ERROR; break;
		case 'h': cmd_run_usage(stdout); exit(0);
		case 'm':
			if (parse_mem(optarg, &o->vm.mem_size))
				return CLI_EXIT_USAGE;
			break;
		case 'p':
			if (parse_count(optarg, 1, VM_MAX_CPUS, &o->vm.ncpus) < 0)
				return bad_usage("--cpus '%s': give a number from 1 to 64", optarg);
			break;
		default:
			return bad_usage("%s", "unknown option or missing argument");
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (!o->vm.kernel)
		return bad_usage("%s", "--kernel FILE is required");
	log_set_level((enum log_level)level);
	return 0;
}

/* SIGINT, SIGTERM and SIGHUP stop every VM cleanly; they are handled by this thread alone. */
static void *signal_thread(void *arg)
{
	struct vmm *vmm = arg;
	uint64_t ids[1024];
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) != 0)
		return NULL;
	pr_info("signal %d: stopping every VM", sig);
	for (unsigned i = 0, n = vmm_list(vmm, ids, 1024); i < n && i < 1024; i++) {
		struct vm *vm = vmm_get(vmm, ids[i]);

		if (vm) {
			vm_request_stop(vm, VM_STOP_REQUESTED, 128 + sig);
			vmm_put(vmm, vm);
		}
	}
	return NULL;
}

static void block_stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Where clones' consoles go unless --clone-console says: files beside the API socket. */
static void default_clone_console(struct run_options *o)
{
	if (o->clone_console || !o->api_path)
		return;
	snprintf(o->clone_console_buf, sizeof(o->clone_console_buf), "file:%s.clone-%%u.log",
		 o->api_path);
	o->clone_console = o->clone_console_buf;
}

static int start_services(struct vmm *vmm, struct vm *root, struct run_options *o,
			  struct api_server **api)
{
	int ret = 0;

	default_clone_console(o);
	vmm->clone_console = o->clone_console;
	if (o->shells)
		ret = shell_pool_create(&vmm->shells, &vmm->kvm, root->mem.size, root->ncpus,
					&root->cpuid_mask, o->shells);
	/* Shells premap the booted VM's RAM, so even its first fork maps nothing. */
	if (!ret && o->shells)
		shell_pool_set_template(vmm->shells, &root->mem, NULL, 0);
	if (!ret && o->api_path)
		ret = api_server_start(api, vmm, o->api_path);
	return ret;
}

/* Boot the VM, serve the API, and wait until every VM (the booted one and its clones) stopped. */
static int run_all(struct vmm *vmm, struct run_options *o)
{
	struct api_server *api = NULL;
	pthread_t sig_thread;
	struct vm *root;
	int ret = vm_create(&root, &vmm->kvm, &o->vm);

	if (ret < 0)
		return CLI_EXIT_ERROR;
	ret = vm_boot(root, &o->vm);
	if (!ret)
		ret = vmm_add(vmm, root);
	if (ret < 0) {
		vm_destroy(root);
		return CLI_EXIT_ERROR;
	}
	ret = start_services(vmm, root, o, &api);
	if (!ret && pthread_create(&sig_thread, NULL, signal_thread, vmm) == 0) {
		ret = vm_start(root);
		vmm_wait_all_stopped(vmm, 0);
		pthread_cancel(sig_thread);
		pthread_join(sig_thread, NULL);
	} else {
		ret = -1;
	}
	if (api)
		api_server_stop(api);
	if (ret < 0)
		return CLI_EXIT_ERROR;
	pr_info("VM stopped: %s, status %d", vm_stop_reason_name(root->stop_reason),
		vm_exit_code(root));
	return vm_exit_code(root) & 0xff;
}

/* Every VM holds a few fds (VM, vCPUs, RAM, console): a thousand clones need more than 1024. */
static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &lim);
	}
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = { .vm = { .mem_size = DEFAULT_MEM, .ncpus = 1, .console_input = true } };
	struct vmm vmm;
	int ret;

	ret = parse_run_args(argc, argv, &o);
	if (ret)
		return ret;
	raise_fd_limit();
	block_stop_signals();
	if (vmm_init(&vmm, o.kvm_path) < 0)
		return CLI_EXIT_ERROR;
	ret = run_all(&vmm, &o);
	vmm_destroy(&vmm);
	return ret;
}
