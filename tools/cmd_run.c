/* vm-fork run: boot a VM and run it until the guest exits. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/console.h"
#include "core/log.h"
#include "core/parse.h"
#include "devices/cmos.h"
#include "devices/debugcon.h"
#include "devices/fw_cfg.h"
#include "devices/pc_reset.h"
#include "fork/vmm.h"
#include "tools/cli.h"
#include "tools/serve.h"
#include "vmm/boot.h"
#include "vmm/vm.h"

#define DEFAULT_MEM (256 * MiB)
/* Debian's SeaBIOS for QEMU's microvm: no PCI, virtio-mmio disks found through the DSDT. */
#define SEABIOS_PATH "/usr/share/seabios/bios-microvm.bin"
/* vm_boot()'s limit on a kernel image (MAX_KERNEL_SIZE in vmm/vm.c). */
#define KERNEL_MAX_SIZE (512 * MiB)

struct run_options {
	struct vm_config vm;
	const char *kvm_path;
	const char *api_path;
	const char *clone_console;
	unsigned shells, workers;
	struct vmm_limits limits;
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
		"      --firmware FILE   boot a firmware image, from its reset vector: it boots\n"
		"                        --disk, or --kernel (a bzImage) through QEMU's\n"
		"                        linuxboot_dma.bin; 'seabios' is Debian's SeaBIOS for\n"
		"                        machines without PCI (%s); COM1 is its screen\n"
		"      --debugcon FILE   append what the guest writes to the debug port 0x402\n"
		"                        (SeaBIOS's trace) to FILE\n"
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
		"\n", SEABIOS_PATH, VM_MAX_CPUS);
	fputs(cli_devices_help, out);
	fputs("\nLimits, so that no guest or client can exhaust the host:\n", out);
	fprintf(out, serve_limits_help, VMM_DEFAULT_MAX_VMS, VMM_DEFAULT_GUEST_FORKS_PER_S,
		VMM_DEFAULT_MAX_CLONE_PROCS);
	fprintf(out,
		"\n"
		"The options and the files they name are checked before KVM is opened (a\n"
		"bzImage's payload only as it boots), so a bad one is reported as a bad command\n"
		"line even on a host without KVM.\n"
		"\n");
	fputs(cli_exit_statuses, out);
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
		{ "firmware", required_argument, NULL, 'F' },
		{ "cmdline", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
		{ "mem-file", required_argument, NULL, 'M' }, { "cpus", required_argument, NULL, 'p' },
		{ "console", required_argument, NULL, 'C' }, { "cpuid-mask", required_argument, NULL, 'X' },
		{ "kvm", required_argument, NULL, 'K' }, { "verbose", no_argument, NULL, 'v' },
		{ "api", required_argument, NULL, 'A' }, { "shells", required_argument, NULL, 'S' },
		{ "clone-console", required_argument, NULL, 'L' },
		{ "debugcon", required_argument, NULL, 'D' },
		{ "process-workers", required_argument, NULL, 'W' },
		{ "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' },
		SERVE_LIMIT_OPTIONS, CLI_DEVICE_OPTIONS, { NULL, 0, NULL, 0 },
	};
	int c, level = LOG_WARN, ret, index;

	while ((c = getopt_long(argc, argv, "+:k:i:c:m:p:vqh", longopts, &index)) != -1) {
		ret = serve_parse_limit("run", c, optarg, &o->limits);
		if (ret != 1) {
			if (ret)
				return ret;
			continue;
		}
		switch (c) {
		case 'k': o->vm.kernel = optarg; break;
		case 'i': o->vm.initrd = optarg; break;
		case 'c': o->vm.cmdline = optarg; break;
		case 'F':
			o->vm.firmware = strcmp(optarg, "seabios") ? optarg : SEABIOS_PATH;
			o->vm.devices.args[device_index(&fw_cfg_device)] = "on";
			o->vm.devices.args[device_index(&pc_reset_device)] = "on";
			o->vm.devices.args[device_index(&cmos_device)] = "on";
			break;
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
		case 'D': o->vm.devices.args[device_index(&debugcon_device)] = optarg; break;
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
		case CLI_DEVICE_OPTION:
			ret = cli_device_option("run", longopts[index].name, optarg, &o->vm.devices);
			if (ret)
				return ret;
			break;
		case 'm':
			if (parse_mem(optarg, &o->vm.mem_size))
				return CLI_EXIT_USAGE;
			break;
		case 'p':
			if (parse_count(optarg, 1, VM_MAX_CPUS, &o->vm.ncpus) < 0)
				return bad_usage("--cpus '%s': give a number from 1 to 64", optarg);
			break;
		default:
			return cli_bad_option("run", argv, longopts, c);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (!o->vm.kernel && !o->vm.firmware)
		return bad_usage("%s", "give --kernel FILE, or --firmware FILE (or both)");
	if (!o->vm.kernel && (o->vm.initrd || o->vm.cmdline))
		return bad_usage("%s", "--initrd and --cmdline go with --kernel");
	log_set_level((enum log_level)level);
	return 0;
}

/* ---- Checks before KVM: a bad command line says so on a host without /dev/kvm too ---- */

static int bad_file(const char *opt, const char *path, const char *why)
{
	fprintf(stderr, "vm-fork run: %s %s: %s\n", opt, path, why);
	return CLI_EXIT_USAGE;
}

/* A file the VMM will read: it opens for reading and is a regular file. */
static int check_readable(const char *opt, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = fd < 0 || fstat(fd, &st) < 0 ? errno : 0;

	if (fd >= 0)
		close(fd);
	if (err)
		return bad_file(opt, path, strerror(err));
	return S_ISREG(st.st_mode) ? 0 : bad_file(opt, path, "not a regular file");
}

/* A file the VMM will create or write: it is writable, or its directory lets it be made. */
static int check_writable(const char *opt, const char *arg, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096], why[4200];

	if (access(path, F_OK) == 0)
		return access(path, W_OK) == 0 ? 0 : bad_file(opt, arg, strerror(errno));
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
	if (access(dir, W_OK | X_OK) == 0)
		return 0;
	snprintf(why, sizeof(why), "%s: %s", dir, strerror(errno));
	return bad_file(opt, arg, why);
}

/* Is it an ELF image? boot_load_kernel() tells the kinds apart by the same magic. */
static bool is_elf(const char *path)
{
	char magic[SELFMAG];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool elf = fd >= 0 && read(fd, magic, SELFMAG) == SELFMAG && !memcmp(magic, ELFMAG, SELFMAG);

	if (fd >= 0)
		close(fd);
	return elf;
}

/*
 * Load an ELF kernel into scratch RAM of the VM's size and write its boot
 * parameters, as vm_boot() will: the loader's own checks (format, segments
 * that fit, the command line's length), in milliseconds. A bzImage is left to
 * vm_boot(): the loader checks one only by decompressing it (about a second
 * for Debian's kernel), and that would double every boot.
 */
static int check_elf_kernel(const struct vm_config *cfg)
{
	struct guest_mem mem;
	struct boot_image bi;
	uint8_t *image;
	size_t len;
	int ret;

	if (guest_mem_create(&mem, cfg->mem_size, NULL) < 0)
		return CLI_EXIT_ERROR;
	ret = boot_read_file(cfg->kernel, KERNEL_MAX_SIZE, &image, &len);
	if (!ret) {
		ret = boot_load_kernel(&mem, image, len, &bi);
		free(image);
	}
	if (!ret)
		ret = boot_write_params(&mem, &bi, cfg->cmdline ? cfg->cmdline : "", 0, 0);
	guest_mem_destroy(&mem);
	return ret < 0 ? CLI_EXIT_USAGE : 0;
}

/*
 * Open the spec as the VM will, and close it; a file is only checked, so a run
 * refused later leaves none. shown: the spec as the user wrote it.
 */
static int check_console(const char *opt, const char *shown, const char *spec)
{
	struct console *c;

	if (!strncmp(spec, "file:", 5) && spec[5])
		return check_writable(opt, shown, spec + 5);
	if (console_open(&c, spec) < 0)
		return CLI_EXIT_USAGE;
	console_close(c);
	return 0;
}

/* Clones' console, a file or socket path checked as the first clone's (id 1) will be. */
static int check_clone_console(const char *spec)
{
	const char *pct = strstr(spec, "%u");
	char one[4200];

	if (!pct || (strncmp(spec, "file:", 5) && strncmp(spec, "socket:", 7)))
		return check_console("--clone-console", spec, spec);
	snprintf(one, sizeof(one), "%.*s1%s", (int)(pct - spec), spec, pct + 2);
	return check_console("--clone-console", spec, one);
}

static int check_api_path(const char *path)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	char why[80];

	if (strlen(path) <= max)
		return check_writable("--api", path, path);
	snprintf(why, sizeof(why), "longer than the %zu bytes a Unix socket path may have", max);
	return bad_file("--api", path, why);
}

/* Everything vm_create() and vm_boot() will refuse that needs no KVM to see. */
static int check_run_args(const struct run_options *o)
{
	struct cpuid_mask mask;
	int ret = 0;

	if (o->vm.cpuid_mask && cpuid_mask_parse(o->vm.cpuid_mask, &mask) < 0)
		return CLI_EXIT_USAGE;
	if (o->vm.console)
		ret = check_console("--console", o->vm.console, o->vm.console);
	if (!ret && o->clone_console)
		ret = check_clone_console(o->clone_console);
	if (!ret && o->vm.firmware)
		ret = check_readable("--firmware", o->vm.firmware);
	if (!ret && o->vm.kernel)
		ret = check_readable("--kernel", o->vm.kernel);
	if (!ret && o->vm.kernel && is_elf(o->vm.kernel))
		ret = check_elf_kernel(&o->vm);
	if (!ret && o->vm.initrd)
		ret = check_readable("--initrd", o->vm.initrd);
	if (!ret && o->vm.mem_path)
		ret = check_writable("--mem-file", o->vm.mem_path, o->vm.mem_path);
	if (!ret && o->api_path)
		ret = check_api_path(o->api_path);
	return ret;
}

/* Boot the VM, serve the API, and wait until every VM (the booted one and its clones) stopped. */
static int run_all(struct vmm *vmm, struct run_options *o)
{
	struct serve_options so = {
		.api_path = o->api_path, .clone_console = o->clone_console, .shells = o->shells,
		.workers = o->workers, .limits = o->limits,
	};
	struct vm *root;

	if (cli_boot_vm(vmm, &o->vm, &root) < 0)
		return CLI_EXIT_ERROR;
	return serve_until_stopped(vmm, &root, 1, &so);
}

int cli_boot_vm(struct vmm *vmm, const struct vm_config *cfg, struct vm **out)
{
	struct vm *vm;
	int ret = vm_create(&vm, &vmm->kvm, cfg);

	if (ret < 0)
		return ret;
	ret = vm_boot(vm, cfg);
	if (!ret)
		ret = vmm_add(vmm, vm);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = { .vm = { .mem_size = DEFAULT_MEM, .ncpus = 1, .console_input = true } };
	struct vmm vmm;
	int ret;

	vmm_limits_default(&o.limits);
	ret = parse_run_args(argc, argv, &o);
	if (!ret)
		ret = check_run_args(&o);
	if (ret)
		return ret;
	serve_prepare_process();
	if (vmm_init(&vmm, o.kvm_path) < 0)
		return CLI_EXIT_ERROR;
	ret = run_all(&vmm, &o);
	vmm_destroy(&vmm);
	return ret;
}
