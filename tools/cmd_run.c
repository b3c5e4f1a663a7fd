/* vm-fork run: boot a VM and run it until the guest exits. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/serve.h"
#include "vmm/log.h"
#include "vmm/parse.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#define DEFAULT_MEM (256 * MiB)

struct run_options {
	struct vm_config vm;
	const char *kvm_path;
	const char *api_path;
	const char *clone_console;
	unsigned shells, workers;
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
		"      --process-workers N  keep N warm worker processes for forks into\n"
		"                        processes of their own (vm-fork fork --processes)\n"
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
		{ "process-workers", required_argument, NULL, 'W' },
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
		case 'W':
			if (parse_count(optarg, 0, 256, &o->workers) < 0)
				return bad_usage("--process-workers '%s': give a number from 0 to 256",
						 optarg);
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

/* Boot the VM, serve the API, and wait until every VM (the booted one and its clones) stopped. */
static int run_all(struct vmm *vmm, struct run_options *o)
{
	struct serve_options so = {
		.api_path = o->api_path, .clone_console = o->clone_console, .shells = o->shells,
		.workers = o->workers,
	};
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
	return serve_until_stopped(vmm, &root, 1, &so);
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = { .vm = { .mem_size = DEFAULT_MEM, .ncpus = 1, .console_input = true } };
	struct vmm vmm;
	int ret;

	ret = parse_run_args(argc, argv, &o);
	if (ret)
		return ret;
	serve_prepare_process();
	if (vmm_init(&vmm, o.kvm_path) < 0)
		return CLI_EXIT_ERROR;
	ret = run_all(&vmm, &o);
	vmm_destroy(&vmm);
	return ret;
}
