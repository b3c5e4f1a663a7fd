/* vm-fork run: boot a VM and run it until the guest exits. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "vmm/log.h"
#include "vmm/parse.h"
#include "vmm/vm.h"

#define DEFAULT_MEM (256 * MiB)

struct run_options {
	struct vm_config vm;
	const char *kvm_path;
};

void cmd_run_usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork run --kernel FILE [options]\n"
		"\n"
		"Boot a VM and run it until the guest exits; vm-fork exits with the guest's status.\n"
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

/* SIGINT, SIGTERM and SIGHUP stop the VM cleanly; they are handled by this thread alone. */
static void *signal_thread(void *arg)
{
	struct vm *vm = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) == 0) {
		pr_info("signal %d: stopping the VM", sig);
		vm_request_stop(vm, VM_STOP_REQUESTED, 128 + sig);
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

static int run_vm(struct vm *vm, const struct vm_config *cfg)
{
	enum vm_stop_reason reason;
	pthread_t sig_thread;
	int ret = vm_boot(vm, cfg);

	if (ret < 0)
		return CLI_EXIT_ERROR;
	if (pthread_create(&sig_thread, NULL, signal_thread, vm))
		return CLI_EXIT_ERROR;
	ret = vm_start(vm);
	reason = vm_wait(vm);
	pthread_cancel(sig_thread);
	pthread_join(sig_thread, NULL);
	if (ret < 0)
		return CLI_EXIT_ERROR;
	pr_info("VM stopped: %s, status %d", vm_stop_reason_name(reason), vm_exit_code(vm));
	return vm_exit_code(vm) & 0xff;
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = { .vm = { .mem_size = DEFAULT_MEM, .ncpus = 1, .console_input = true } };
	struct kvm_host kvm;
	struct vm *vm;
	int ret;

	ret = parse_run_args(argc, argv, &o);
	if (ret)
		return ret;
	block_stop_signals();
	if (kvm_host_open(&kvm, o.kvm_path) < 0)
		return CLI_EXIT_ERROR;
	ret = vm_create(&vm, &kvm, &o.vm);
	if (ret < 0) {
		kvm_host_close(&kvm);
		return CLI_EXIT_ERROR;
	}
	ret = run_vm(vm, &o.vm);
	vm_destroy(vm);
	kvm_host_close(&kvm);
	return ret;
}
