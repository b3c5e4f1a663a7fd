/*
 * vm-fork-bench: the fork's floors and peers at several RAM sizes in one run.
 * Usage: vm-fork-bench [--quick] [--sizes 64M,1G] [--out DIR] [--no-qemu] ...
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/layout.h"
#include "core/log.h"
#include "core/parse.h"
#include "tools/bench/bench.h"

/* The table, in print order. ratio_vs names the floor a row is divided by. */
const struct bench_row_def bench_rows[NROWS] = {
	[ROW_COLD_VM] = { "cold_vm", "us", ROW_NONE,
		"KVM_CREATE_VM + KVM_CREATE_VCPU + memfd RAM + its memory slots", NULL },
	[ROW_MAP_BASE] = { "map_base", "us", ROW_COLD_VM,
		"prepared VM: mmap MAP_FIXED|MAP_PRIVATE of the base + full state load", NULL },
	[ROW_MAP_MMAP] = { "map_base.mmap", "us", ROW_COLD_VM,
		"  its mmap over the slotted range (KVM invalidation)", NULL },
	[ROW_MAP_STATE] = { "map_base.state", "us", ROW_COLD_VM,
		"  its vCPU + VM state load (state/state.h)", NULL },
	[ROW_PROC_FORK] = { "process_fork", "us", ROW_COLD_VM,
		"fork() of a process holding this much touched anonymous RAM", NULL },
	[ROW_MEMCPY] = { "memcpy", "us", ROW_COLD_VM,
		"memcpy of this much RAM between populated buffers", NULL },
	[ROW_QEMU_START] = { "qemu_start", "us", ROW_COLD_VM,
		"QEMU process start -> QMP ready (-incoming defer)", NULL },
	[ROW_QEMU_RESTORE] = { "qemu_restore", "us", ROW_COLD_VM,
		"QEMU migrate-incoming from a file -> running again", NULL },
	[ROW_QEMU_TOTAL] = { "qemu_restore_total", "us", ROW_COLD_VM,
		"QEMU process start -> restored and running", NULL },
	[ROW_FORK_COLD] = { "vm_fork_cold", "us", ROW_COLD_VM,
		"vm_fork() of a paused template into 1 started child, no warm shells", NULL },
	[ROW_FORK_WARM] = { "vm_fork_warm", "us", ROW_MAP_BASE,
		"the same from a full pool of prepared warm shells", NULL },
	[ROW_FORK_RUN] = { "fork_running", "us", ROW_MAP_BASE,
		"first fork of a running VM (shells premapped its RAM; it moves into one): child runnable", NULL },
	[ROW_FORK_RUN_PAUSED] = { "fork_running.paused", "us", ROW_MAP_BASE,
		"  its parent's vCPUs out of the guest (fork_stats.paused_ns)", NULL },
	[ROW_FORK_RUN_FREEZE] = { "fork_running.freeze", "us", ROW_MAP_BASE,
		"  its in-place base freeze (fork_stats.freeze_ns; 0 when it moved)", NULL },
	[ROW_FORK_RUN2] = { "fork_running2", "us", ROW_MAP_BASE,
		"that VM's second fork, 50 ms of running later", NULL },
	[ROW_FORK_RUN2_PAGES] = { "fork_running2.pages", "pages", ROW_NONE,
		"  the parent's pages it copied into the child", NULL },
	[ROW_FORK_FIRST_INSN] = { "fork_first_insn", "us", ROW_COLD_VM,
		"vm_fork() start -> the child's first action (a template paused at a known point)",
		NULL },
	[ROW_FORK_FIRST_REPORT] = { "fork_first_report", "us", ROW_COLD_VM,
		"vm_fork() start -> the child's first report (guest polls per 1 ms tick)", NULL },
	[ROW_CLONE_HOST] = { "clone_host_mem", "KiB", ROW_NONE,
		"host MemAvailable drop per idle clone, kernel memory included", NULL },
	[ROW_CLONE_KERNEL] = { "clone_kernel_mem", "KiB", ROW_NONE,
		"  of it kernel memory: VmallocUsed+Slab+PageTables growth", NULL },
	[ROW_CLONE_USS] = { "clone_uss_idle", "KiB", ROW_NONE,
		"VMM process USS growth (Private_Clean+Private_Dirty) per idle clone", NULL },
	[ROW_CLONE_PRIVATE] = { "clone_private", "KiB", ROW_NONE,
		"guest pages an idle clone wrote (vm_private_bytes)", NULL },
	[ROW_MAX_CLONES] = { "max_clones", "count", ROW_NONE,
		"live idle clones of a 256 MiB guest this host holds (256M only)", NULL },
	[ROW_DISK_FORK] = { "disk_fork", "us", ROW_NONE,
		"a clone's disk: the parent's top layer frozen + a new image over it (no KVM)", NULL },
	[ROW_DISK_FIRST_WRITE] = { "disk_first_write", "us", ROW_NONE,
		"  a clone's first 4 KiB write: its overlay made and the block written", NULL },
	[ROW_DISK_CLONE_MEM] = { "disk_clone_mem", "KiB", ROW_NONE,
		"  host memory per clone that wrote 64 KiB (overlay blocks + RSS growth)", NULL },
	[ROW_LINUX_INIT] = { "linux_init", "us", ROW_QEMU_LINUX,
		"vm-fork run -> the initramfs's init, small kernel (make guest-kernel; 256M only)",
		NULL },
	[ROW_LINUX_DEBIAN] = { "linux_init_debian", "us", ROW_LINUX_INIT,
		"  the same with Debian's kernel (/boot/vmlinuz-*)", NULL },
	[ROW_LINUX_EXIT] = { "linux_exit", "us", ROW_NONE,
		"  init's line -> vm-fork exited 0 (its reboot -f), small kernel", NULL },
	[ROW_QEMU_LINUX] = { "qemu_linux_init", "us", ROW_NONE,
		"qemu-system-x86_64 -accel kvm start -> init, small kernel", NULL },
	[ROW_VSOCK_REPLY] = { "vsock_first_reply", "us", ROW_LINUX_INIT,
		"fork of a paused Linux -> a vsock client's first reply from the clone (256M only)",
		NULL },
};

const struct bench_ratio bench_ratios[] = {
	{ ROW_MAP_BASE, ROW_COLD_VM },
	{ ROW_MAP_BASE, ROW_PROC_FORK },
	{ ROW_PROC_FORK, ROW_COLD_VM },
	{ ROW_MEMCPY, ROW_PROC_FORK },
	{ ROW_QEMU_RESTORE, ROW_COLD_VM },
	{ ROW_QEMU_RESTORE, ROW_MAP_BASE },
	{ ROW_FORK_COLD, ROW_COLD_VM },
	{ ROW_FORK_COLD, ROW_PROC_FORK },
	{ ROW_FORK_COLD, ROW_MEMCPY },
	{ ROW_FORK_COLD, ROW_QEMU_RESTORE },
	{ ROW_FORK_WARM, ROW_MAP_BASE },
	{ ROW_FORK_WARM, ROW_COLD_VM },
	{ ROW_FORK_WARM, ROW_QEMU_RESTORE },
	{ ROW_FORK_RUN, ROW_MAP_BASE },
	{ ROW_FORK_RUN_PAUSED, ROW_PROC_FORK },
	{ ROW_FORK_RUN2, ROW_MAP_BASE },
	{ ROW_FORK_FIRST_INSN, ROW_QEMU_TOTAL },
	{ ROW_FORK_FIRST_REPORT, ROW_QEMU_TOTAL },
};
const unsigned bench_nratios = sizeof(bench_ratios) / sizeof(bench_ratios[0]);

/* The fork engine's goals, checked after the table. */
const struct bench_target bench_targets[] = {
	{ TARGET_RATIO_MAX, ROW_FORK_COLD, ROW_NONE, 1.25, 0 },
	{ TARGET_P50_MAX, ROW_FORK_WARM, ROW_NONE, 100, 0 },
	{ TARGET_FLAT_MAX, ROW_FORK_WARM, ROW_NONE, 1.2, 0 },
	{ TARGET_RATIO_MAX, ROW_FORK_RUN, ROW_NONE, 1.25, 0 },
	{ TARGET_RATIO_MAX, ROW_FORK_RUN_PAUSED, ROW_NONE, 1.25, 0 },
	{ TARGET_EXCESS_MAX, ROW_CLONE_USS, ROW_CLONE_PRIVATE, 128, 0 },
	{ TARGET_EXCESS_MAX, ROW_CLONE_HOST, ROW_CLONE_PRIVATE, 128, 0 },
	{ TARGET_EXCESS_MAX, ROW_CLONE_KERNEL, ROW_CLONE_PRIVATE, 128, 0 },
	{ TARGET_P50_MIN, ROW_MAX_CLONES, ROW_NONE, 1000, 0 },
	/* "At 1 GiB, at least 50x faster than fork() of the process": each kind of fork. */
	{ TARGET_SPEEDUP_MIN, ROW_FORK_WARM, ROW_PROC_FORK, 50, 1ULL << 30 },
	{ TARGET_SPEEDUP_MIN, ROW_FORK_RUN, ROW_PROC_FORK, 50, 1ULL << 30 },
	{ TARGET_SPEEDUP_MIN, ROW_FORK_COLD, ROW_PROC_FORK, 50, 1ULL << 30 },
	/* Linux to init: 150 ms on hardware KVM (under QEMU's TCG the goal is 15 s). */
	{ TARGET_P50_MAX, ROW_LINUX_INIT, ROW_NONE, 150000, 0 },
	{ TARGET_P50_MAX, ROW_LINUX_EXIT, ROW_NONE, 1000000, 0 },
};
const unsigned bench_ntargets = sizeof(bench_targets) / sizeof(bench_targets[0]);

/*
 * Per size, in this order; each frees what it used before the next starts.
 * Late runners go in a second pass over the sizes, after every other one:
 * tearing down thousands of VMs leaves the host slower for a while (KVM's
 * deferred frees), which would land in the next size's latencies.
 */
static const struct {
	const char *name;
	bench_runner run;
	bool late;
} runners[] = {
	{ "cold_vm", bench_cold_vm, false },
	{ "map_base", bench_map_base, false },
	{ "process_fork", bench_proc_fork, false },
	{ "memcpy", bench_memcpy, false },
	{ "qemu", bench_qemu, false },
	{ "fork", bench_fork, false },
	{ "first", bench_fork_first, false },
	{ "clones", bench_clones, true },
	{ "linux", bench_linux, true },
	{ "disk", bench_disk, false },
	{ "vsock", bench_vsock, true },
};
#define NRUNNERS (sizeof(runners) / sizeof(runners[0]))

static const char default_sizes[] = "64M,256M,1G,4G,16G";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vm-fork-bench [options]\n"
		"  --sizes LIST   RAM sizes, comma separated (default %s)\n"
		"  --quick        few iterations (a smoke run)\n"
		"  --out DIR      where results.csv, results.json and plot.dat go (default .)\n"
		"  --iters N      iterations of the cheap (ioctl-level) operations\n"
		"  --qemu PATH    the QEMU binary (default: qemu-system-x86_64 from PATH)\n"
		"  --no-qemu      leave the QEMU rows empty\n"
		"  --guests DIR   where idle.elf and wait_fork.elf are (default: guest/ beside\n"
		"                 this binary)\n"
		"  --only LIST    run only these measurements (cold_vm,map_base,process_fork,\n"
		"                 memcpy,qemu,fork,first,clones,linux,disk,vsock); the rest stay empty\n"
		"  --list         describe the rows and exit\n", default_sizes);
}

static int parse_sizes(const char *list, struct bench_cfg *cfg)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	cfg->nsizes = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t size;
		unsigned i;

		if (parse_size(tok, &size) < 0 || size < VM_MIN_MEM || size % (2 * MiB) ||
		    size > 64 * GiB || cfg->nsizes == BENCH_MAX_SIZES) {
			fprintf(stderr, "bench: bad size '%s' (2 MiB multiples, 16M..64G, at most %d)\n",
				tok, BENCH_MAX_SIZES);
			return -EINVAL;
		}
		/* Insertion sort: the table and the plot read left to right. */
		for (i = cfg->nsizes++; i > 0 && cfg->sizes[i - 1] > size; i--)
			cfg->sizes[i] = cfg->sizes[i - 1];
		cfg->sizes[i] = size;
	}
	return cfg->nsizes ? 0 : -EINVAL;
}

static void set_quick(struct bench_cfg *cfg)
{
	cfg->quick = true;
	cfg->iters_cheap = 20;
	cfg->iters_fork = 5;
	cfg->iters_copy = 3;
	cfg->iters_qemu = 2;
	cfg->min_iters = 3;
	cfg->qemu_run_ms = 200;
	cfg->iters_vmfork = 5;
	cfg->iters_boot = 3;
	cfg->clones_k = 50;
	cfg->max_clones = 1000;
}

/* The QEMU binary: as given, else from PATH, else NULL (its rows stay empty). */
static const char *find_qemu(const char *given)
{
	const char *path = getenv("PATH");
	char buf[256], dir[4096], *save = NULL;

	if (given)
		return given;
	snprintf(dir, sizeof(dir), "%s", path ? path : "/usr/bin:/bin");
	for (char *d = strtok_r(dir, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/qemu-system-x86_64", d);
		if (access(buf, X_OK) == 0)
			return "qemu-system-x86_64";
	}
	fprintf(stderr, "bench: qemu-system-x86_64 not found: the QEMU rows stay empty "
		"(apt-get install qemu-system-x86)\n");
	return NULL;
}

static void list_rows(void)
{
	for (int row = 0; row < NROWS; row++)
		printf("%-20s %-5s %s\n", bench_rows[row].name, bench_rows[row].unit,
		       bench_rows[row].what);
}

static int parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
	static const struct option opts[] = {
		{ "sizes", required_argument, NULL, 's' }, { "quick", no_argument, NULL, 'q' },
		{ "out", required_argument, NULL, 'o' }, { "iters", required_argument, NULL, 'i' },
		{ "qemu", required_argument, NULL, 'Q' }, { "no-qemu", no_argument, NULL, 'N' },
		{ "list", no_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ "guests", required_argument, NULL, 'g' }, { "only", required_argument, NULL, 'O' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sizes = default_sizes, *qemu = NULL;
	unsigned iters = 0;
	bool no_qemu = false;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': sizes = optarg; break;
		case 'q': set_quick(cfg); break;
		case 'o': cfg->out_dir = optarg; break;
		case 'i':
			if (parse_count(optarg, 1, 100000, &iters) < 0)
				return -EINVAL;
			break;
		case 'Q': qemu = optarg; break;
		case 'N': no_qemu = true; break;
		case 'g': cfg->guest_dir = optarg; break;
		case 'O': cfg->only = optarg; break;
		case 'l': list_rows(); exit(0);
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind != argc || parse_sizes(sizes, cfg) < 0)
		return -EINVAL;
	if (iters)
		cfg->iters_cheap = iters;
	cfg->qemu = no_qemu ? NULL : find_qemu(qemu);
	return 0;
}

static int ctx_init(struct bench_ctx *ctx, const struct bench_cfg *cfg)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	snprintf(ctx->tmpdir, sizeof(ctx->tmpdir), "/tmp/vm-fork-bench.XXXXXX");
	if (!mkdtemp(ctx->tmpdir))
		return -errno;
	ctx->have_kvm = kvm_host_open(&ctx->kvm, NULL) == 0;
	if (ctx->have_kvm)
		ctx->have_msrs = msr_list_init(&ctx->msrs, &ctx->kvm, NULL) == 0;
	if (!ctx->have_kvm)
		fprintf(stderr, "bench: no usable KVM: the KVM rows stay empty\n");
	return 0;
}

static void ctx_destroy(struct bench_ctx *ctx)
{
	if (ctx->have_kvm)
		kvm_host_close(&ctx->kvm);
	rmdir(ctx->tmpdir);
}

/* Is this runner in --only's list (or is there no list)? */
static bool selected(const struct bench_cfg *cfg, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = cfg->only; p && *p; p += strcspn(p, ","), p += *p == ',')
		if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
			return true;
	return !cfg->only;
}

/* guest/ beside this binary: make builds both into the same directory. */
static void default_guest_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 8);
	char *slash;

	if (n <= 0) {
		snprintf(buf, len, "build/guest");
		return;
	}
	buf[n] = 0;
	slash = strrchr(buf, '/');
	snprintf(slash ? slash + 1 : buf, len - (size_t)(slash ? slash + 1 - buf : 0), "guest");
}

static void run_pass(struct bench_ctx *ctx, bool late, uint64_t start)
{
	const struct bench_cfg *cfg = ctx->cfg;
	char sz[16];

	for (unsigned si = 0; si < cfg->nsizes; si++) {
		for (size_t k = 0; k < NRUNNERS; k++) {
			uint64_t t0 = now_ns();
			int ret;

			if (runners[k].late != late || !selected(cfg, runners[k].name))
				continue;
			ret = runners[k].run(ctx, si);
			fprintf(stderr, "bench: %4s %-13s %6.1f s%s (total %.0f s)\n",
				size_str(cfg->sizes[si], sz, sizeof(sz)), runners[k].name,
				(now_ns() - t0) / 1e9, ret < 0 ? " FAILED" : "",
				(now_ns() - start) / 1e9);
		}
	}
}

static void run_all(struct bench_ctx *ctx)
{
	uint64_t start = now_ns();

	run_pass(ctx, false, start);
	run_pass(ctx, true, start);
}

static int write_outputs(const struct bench_ctx *ctx)
{
	static const char *const names[] = {
		"results.csv", "results.json", "plot.dat", "plot_mem.dat",
	};
	char path[4096];
	int failed = 0;

	if (mkdir(ctx->cfg->out_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "bench: cannot create %s: %s\n", ctx->cfg->out_dir, strerror(errno));
		return -errno;
	}
	printf("\n");
	for (unsigned i = 0; i < 4; i++) {
		int ret;

		snprintf(path, sizeof(path), "%s/%s", ctx->cfg->out_dir, names[i]);
		if (i == 0)
			ret = report_csv(ctx, path);
		else if (i == 1)
			ret = report_json(ctx, path);
		else
			ret = report_plot_data(ctx, path, i == 2 ? "us" : "KiB");
		if (ret < 0) {
			fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(-ret));
			failed = ret;
		} else {
			printf("wrote %s\n", path);
		}
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg = {
		.out_dir = ".", .iters_cheap = 200, .iters_fork = 50, .iters_copy = 10,
		.iters_qemu = 5, .min_iters = 5, .qemu_run_ms = 300,
		.iters_vmfork = 50, .iters_boot = 15, .clones_k = 200, .max_clones = 2000,
	};
	char guests[4096];
	struct bench_ctx *ctx = malloc(sizeof(*ctx));
	int ret;

	log_set_level(LOG_WARN);
	if (!ctx || parse_args(argc, argv, &cfg) < 0) {
		usage(stderr);
		return 2;
	}
	if (!cfg.guest_dir) {
		default_guest_dir(guests, sizeof(guests));
		cfg.guest_dir = guests;
	}
	ret = ctx_init(ctx, &cfg);
	if (ret < 0) {
		fprintf(stderr, "bench: cannot create a scratch directory: %s\n", strerror(-ret));
		return 1;
	}
	run_all(ctx);
	report_table(ctx);
	ret = write_outputs(ctx);
	ctx_destroy(ctx);
	free(ctx);
	return ret < 0 ? 1 : 0;
}
