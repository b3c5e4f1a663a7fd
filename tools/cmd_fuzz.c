/*
 * vm-fork fuzz: a target for stock afl-fuzz. The guest boots once, marks its
 * start, and every input runs from that mark in the same VM, reset in place
 * between inputs (server/fuzz.h). Without afl-fuzz it runs one input (a
 * replay) and says how the run ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/parse.h"
#include "fork/snapdir.h"
#include "fork/vmm.h"
#include "server/fuzz.h"
#include "tools/cli.h"
#include "vmm/vm.h"

#define FUZZ_DEFAULT_MEM (64 * MiB)
#define EXIT_HANG 124 /* timeout(1)'s */

struct fuzz_options {
	struct vm_config vm;
	struct fuzz_config fz;
	const char *kvm_path;
	const char *replay;
	const char *snapshot;      /* restore the guest from this snapshot instead of booting it */
};

void cmd_fuzz_usage(FILE *out)
{
	fprintf(out,
		"usage: afl-fuzz -i IN -o OUT [-t MS] -- vm-fork fuzz --kernel GUEST [options] [@@]\n"
		"       vm-fork fuzz --kernel GUEST [options] --replay FILE\n"
		"       ... vm-fork fuzz --snapshot DIR [options] [@@]\n"
		"\n"
		"Fuzz a guest with stock AFL++. The guest boots once and marks its start; each\n"
		"input then runs from that mark in the same VM, reset in place between inputs.\n"
		"Coverage goes straight into afl-fuzz's map, mapped into the guest. Under\n"
		"afl-fuzz (its forkserver pipes open) the input comes from afl-fuzz's shared\n"
		"memory, else from FILE (afl-fuzz's @@), else from stdin. Without afl-fuzz it\n"
		"runs one input and says how the run ended. docs/fuzzing.md has the guest's side.\n"
		"\n"
		"  -k, --kernel FILE     the guest (ELF64 or bzImage)\n"
		"  -i, --initrd FILE     its initial ramdisk (a Linux guest)\n"
		"      --snapshot DIR    restore the guest from a snapshot instead (vm-fork snapshot\n"
		"                        of a guest waiting for vm-fork fuzz, e.g. our runtime's\n"
		"                        fuzz=wait): instances share its memory in the page cache\n"
		"  -c, --cmdline STR     its command line\n"
		"  -m, --mem SIZE        guest RAM (default 64M)\n"
		"      --replay FILE     run FILE's input and report (no afl-fuzz)\n"
		"      --runs N          with --replay: run it N times, each from the mark (default 1)\n"
		"      --timeout MS      with --replay: a run longer than this is a hang (default 1000)\n"
		"      --map-size N      coverage map bytes, a power of 2 (default %u)\n"
		"      --no-coverage     give the guest no map (a baseline: afl-fuzz sees one edge)\n"
		"      --input-max SIZE  bytes of input a run gets at most (default 1M)\n"
		"      --console SPEC    the guest's console (default none; see vm-fork run)\n"
		"      --kvm PATH        the KVM device (default /dev/kvm)\n"
		"  -v, --verbose         more messages;  -q, --quiet  errors only\n"
		"\n"
		"A run ends when the guest writes FUZZ_DONE (ok) or FUZZ_CRASH, faults, triple\n"
		"faults or exits. afl-fuzz is told a crash as a signal: SIGABRT for the guest's\n"
		"crash report, SIGSEGV (#PF, #GP, ...), SIGILL (#UD), SIGFPE (#DE), SIGTRAP (#BP),\n"
		"SIGBUS (#AC, #MC) for a CPU exception, SIGSYS for a triple fault, SIGQUIT for a\n"
		"machine reset, SIGUSR2 when KVM cannot go on. On afl-fuzz's timeout it kills a\n"
		"helper process whose pid it was told, never the VMM.\n"
		"\n"
		"Exit status of a replay: 0 done, the guest's status if it exited, 128+SIGNAL\n"
		"for a crash, 124 for a hang; 1 when the VMM failed, 64 on a bad command line.\n",
		FUZZ_DEFAULT_MAP_SIZE);
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "vm-fork fuzz: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'vm-fork fuzz --help')\n");
	return CLI_EXIT_USAGE;
}

static int parse_number_opt(int c, const char *arg, struct fuzz_options *o)
{
	uint64_t v;

	switch (c) {
	case 'R':
		if (parse_u64(arg, 1, UINT32_MAX, &o->fz.runs) < 0)
			return bad_usage("--runs '%s': give a number from 1", arg);
		return 0;
	case 'T':
		if (parse_u64(arg, 1, 3600 * 1000, &v) < 0)
			return bad_usage("--timeout '%s': give milliseconds, 1 to 3600000", arg);
		o->fz.timeout_ns = v * 1000000;
		return 0;
	case 'S':
		if (parse_u64(arg, 4096, 1 << 23, &v) < 0 || (v & (v - 1)))
			return bad_usage("--map-size '%s': give a power of 2 from 4096 to 8388608", arg);
		o->fz.map_size = (uint32_t)v;
		return 0;
	case 'I':
		if (parse_size(arg, &v) < 0 || !v || v > LAYOUT_FUZZ_INPUT_MAX - PAGE_SIZE)
			return bad_usage("--input-max '%s': give a size from 1 byte to 16M - 4K", arg);
		o->fz.input_max = v;
		return 0;
	case 'm':
		if (parse_size(arg, &v) < 0 || v < VM_MIN_MEM || v > VM_MAX_MEM || v % (2 * MiB))
			return bad_usage("--mem '%s': give a size from 16M, a multiple of 2M", arg);
		o->vm.mem_size = v;
		return 0;
	}
	return 1;
}

/*
 * The files named are there to read: said as a bad command line, before KVM.
 * Not afl-fuzz's @@ file: afl-fuzz writes it before each run.
 */
static int check_files(const struct fuzz_options *o)
{
	const char *files[] = { o->vm.kernel, o->vm.initrd, o->replay, o->snapshot };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i] && access(files[i], R_OK) < 0) {
			fprintf(stderr, "vm-fork fuzz: %s: %s\n", files[i], strerror(errno));
			return CLI_EXIT_USAGE;
		}
	return 0;
}

static int parse_fuzz_args(int argc, char **argv, struct fuzz_options *o)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "cmdline", required_argument, NULL, 'c' },
		{ "initrd", required_argument, NULL, 'i' }, { "snapshot", required_argument, NULL, 'D' },
		{ "mem", required_argument, NULL, 'm' }, { "replay", required_argument, NULL, 'P' },
		{ "runs", required_argument, NULL, 'R' }, { "timeout", required_argument, NULL, 'T' },
		{ "map-size", required_argument, NULL, 'S' }, { "no-coverage", no_argument, NULL, 'N' },
		{ "input-max", required_argument, NULL, 'I' },
		{ "console", required_argument, NULL, 'C' }, { "kvm", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c, ret, level = LOG_WARN;

	while ((c = getopt_long(argc, argv, "+:k:i:c:m:vqh", longopts, NULL)) != -1) {
		ret = parse_number_opt(c, optarg, o);
		if (ret != 1) {
			if (ret)
				return ret;
			continue;
		}
		switch (c) {
		case 'k': o->vm.kernel = optarg; break;
		case 'i': o->vm.initrd = optarg; break;
		case 'c': o->vm.cmdline = optarg; break;
		case 'D': o->snapshot = optarg; break;
		case 'P': o->replay = optarg; break;
		case 'N': o->fz.coverage = false; break;
		case 'C': o->vm.console = optarg; break;
		case 'K': o->kvm_path = optarg; break;
		case 'v': level = level < LOG_DEBUG ? level + 1 : LOG_DEBUG; break;
		case 'q': level = LOG_ERROR; break;
		case 'h': cmd_fuzz_usage(stdout); exit(0);
		default: return cli_bad_option("fuzz", argv, longopts, c);
		}
	}
	if (optind + 1 < argc)
		return bad_usage("unexpected argument '%s'", argv[optind + 1]);
	o->fz.input_path = optind < argc ? argv[optind] : o->replay;
	if (o->replay && optind < argc)
		return bad_usage("%s", "give the input once: --replay FILE or FILE");
	if (!o->vm.kernel == !o->snapshot)
		return bad_usage("%s", "give the guest: --kernel FILE or --snapshot DIR");
	if (o->snapshot && (o->vm.initrd || o->vm.cmdline))
		return bad_usage("%s", "--initrd and --cmdline are the snapshot's own");
	log_set_level((enum log_level)level);
	return check_files(o);
}

/* Under afl-fuzz: its forkserver pipes are open (and this is no replay). */
static bool under_afl(const struct fuzz_options *o)
{
	return !o->replay && fcntl(AFL_FS_CTL_FD, F_GETFD) >= 0 && fcntl(AFL_FS_ST_FD, F_GETFD) >= 0;
}

static int replay_status(const struct fuzz_run_result *r, const struct fuzz_stats *st,
			 uint64_t ns)
{
	fprintf(stderr, "vm-fork fuzz: %llu run%s in %.1f ms", (unsigned long long)st->runs,
		st->runs == 1 ? "" : "s", ns / 1e6);
	if (st->runs > 1)
		fprintf(stderr, " (%.0f runs/s; reset %.1f us and %.1f pages a run)",
			st->runs / (ns / 1e9), st->reset_ns_total / 1e3 / (double)(st->runs - 1),
			st->pages_reset / (double)(st->runs - 1));
	switch (r->outcome) {
	case FUZZ_OK:
		fprintf(stderr, ": done\n");
		return 0;
	case FUZZ_EXITED:
		fprintf(stderr, ": the guest %s\n", r->what);
		return r->code;
	case FUZZ_CRASH:
		fprintf(stderr, ": crash: %s (%s)\n", r->what, strsignal(r->signal));
		return 128 + r->signal;
	default:
		fprintf(stderr, ": %s\n", r->what);
		return EXIT_HANG;
	}
}

/* A VM from the snapshot, paused: its RAM maps the snapshot's mem file, shared by every instance. */
static int restore_vm(struct vmm *vmm, const struct fuzz_options *o, struct vm **vm)
{
	struct snapshot_image img;
	int ret = snapshot_open(o->snapshot, vmm->kvm.supported_cpuid, &img);

	if (!ret) {
		ret = vm_restore(vmm, &img, 1, o->vm.console, vm);
		snapshot_close(&img);
	}
	if (ret < 0)
		fprintf(stderr, "vm-fork fuzz: %s: %s\n", o->snapshot, strerror(-ret));
	return ret;
}

/* The VM lives in a registry (vmm) as any VM: its reset point captures through it. */
static int fuzz_vm(struct vmm *vmm, struct fuzz_options *o)
{
	struct fuzz_session *s = NULL;
	struct fuzz_run_result last;
	struct fuzz_stats st;
	uint64_t t0 = now_ns();
	struct vm *vm;
	int ret = o->snapshot ? restore_vm(vmm, o, &vm) : cli_boot_vm(vmm, &o->vm, &vm);

	if (ret < 0)
		return CLI_EXIT_ERROR;
	ret = fuzz_session_start(&s, vm, &o->fz);
	if (!ret)
		ret = o->snapshot ? vm_resume(vm) : vm_start(vm);
	if (!ret)
		vm_wait(vm);
	if (!ret && !fuzz_session_marked(s)) {
		fprintf(stderr, "vm-fork fuzz: the guest stopped (%s) before it marked its start\n",
			vm_stop_reason_name(vm_stop_reason(vm)));
		ret = -EINVAL;
	}
	if (!ret) {
		fuzz_session_result(s, &last, &st);
		ret = o->fz.afl ? vm_exit_code(vm) : replay_status(&last, &st, now_ns() - t0);
		if (o->fz.afl)
			pr_info("fuzz: %llu runs, %llu crashes, %llu hangs", (unsigned long long)st.runs,
				(unsigned long long)st.crashes, (unsigned long long)st.hangs);
	} else {
		ret = CLI_EXIT_ERROR;
	}
	fuzz_session_end(s);
	vmm_remove(vmm, vm->id);
	return ret;
}

int cmd_fuzz(int argc, char **argv)
{
	struct fuzz_options o = {
		.vm = { .mem_size = FUZZ_DEFAULT_MEM, .ncpus = 1, .console = "none" },
		.fz = { .map_size = FUZZ_DEFAULT_MAP_SIZE, .coverage = true, .runs = 1,
			.input_max = FUZZ_DEFAULT_INPUT_MAX, .timeout_ns = 1000 * 1000000ULL },
	};
	char exe[PATH_MAX];
	struct vmm vmm;
	ssize_t n;
	int ret = parse_fuzz_args(argc, argv, &o);

	if (ret)
		return ret;
	o.fz.afl = under_afl(&o);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "vm-fork fuzz: cannot find its own program: %s\n", strerror(errno));
		return CLI_EXIT_ERROR;
	}
	exe[n] = '\0';
	o.fz.helper_exe = exe;
	signal(SIGPIPE, SIG_IGN); /* afl-fuzz gone: its pipe says EPIPE, and the session ends */
	if (vmm_init(&vmm, o.kvm_path) < 0)
		return CLI_EXIT_ERROR;
	ret = fuzz_vm(&vmm, &o);
	vmm_destroy(&vmm);
	return ret;
}

int cmd_fuzz_helper(int argc, char **argv)
{
	return fuzz_helper_main();
}

void cmd_fuzz_helper_usage(FILE *out)
{
	fprintf(out, "vm-fork fuzz-helper: started by vm-fork fuzz; waits to be killed.\n");
}
