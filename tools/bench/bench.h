/*
 * vm-fork-bench: what a fork costs next to the floors it must beat, measured
 * in one run so that the ratios are side by side (absolute times on a shared,
 * nested host mean little across runs; see docs/performance.md).
 *
 * Every figure is a row of a fixed table (enum bench_row, bench_rows[] in
 * main.c) times a RAM size. A runner measures one or more rows at one size
 * and fills their cells; a row with no runner stays empty with a note.
 * Adding a row: an enum entry, a bench_rows[] entry, and a runner that fills
 * it; a goal for it is a bench_targets[] entry.
 */
#ifndef TOOLS_BENCH_BENCH_H
#define TOOLS_BENCH_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/kvm.h"
#include "fork/fork.h"
#include "state/state.h"

struct vm;
struct vmm;

#define BENCH_MAX_SIZES 8
#define BENCH_NOTE_MAX  96

struct bench_cfg {
	uint64_t sizes[BENCH_MAX_SIZES];  /* bytes, ascending */
	unsigned nsizes;
	bool quick;
	const char *out_dir;              /* CSV, JSON and plot data go here */
	unsigned iters_cheap;             /* ioctl-level operations */
	unsigned iters_fork;              /* process fork() at <= 1 GiB; fewer above */
	unsigned iters_copy;              /* memcpy at <= 1 GiB; fewer above */
	unsigned iters_qemu;              /* QEMU restores per size */
	unsigned min_iters;               /* never fewer than this */
	const char *qemu;                 /* binary; NULL: skip the QEMU rows */
	unsigned qemu_run_ms;             /* let the source run (SeaBIOS) before saving */
	const char *only;                 /* runners to run, comma separated; NULL: all */
	/* The fork engine's rows (fork_rows.c, fork_first.c, clone_rows.c). */
	const char *guest_dir;            /* idle.elf, wait_fork.elf, fork_isolation.elf */
	unsigned iters_vmfork;            /* forks of a paused template, per size */
	unsigned iters_boot;              /* forks that need a freshly booted VM each */
	unsigned clones_k;                /* idle clones weighed per round, up to 1 GiB */
	unsigned max_clones;              /* where max_clones stops counting */
};

enum bench_row {
	ROW_COLD_VM,
	ROW_MAP_BASE,
	ROW_MAP_MMAP,
	ROW_MAP_STATE,
	ROW_PROC_FORK,
	ROW_MEMCPY,
	ROW_QEMU_START,
	ROW_QEMU_RESTORE,
	ROW_QEMU_TOTAL,
	/* The fork engine's (fork_rows.c, clone_rows.c). */
	ROW_FORK_COLD,
	ROW_FORK_WARM,
	ROW_FORK_RUN,
	ROW_FORK_RUN_PAUSED,
	ROW_FORK_RUN_FREEZE,
	ROW_FORK_RUN2,
	ROW_FORK_RUN2_PAGES,
	ROW_FORK_FIRST_INSN,
	ROW_FORK_FIRST_REPORT,
	ROW_CLONE_HOST,
	ROW_CLONE_KERNEL,
	ROW_CLONE_USS,
	ROW_CLONE_PRIVATE,
	ROW_MAX_CLONES,
	/* The disk overlay per clone (disk_rows.c), the disk as large as the RAM column. */
	ROW_DISK_FORK,
	ROW_DISK_FIRST_WRITE,
	ROW_DISK_CLONE_MEM,
	/* Linux to userspace (linux_boot.c), at 256 MiB only. */
	ROW_LINUX_INIT,
	ROW_LINUX_DEBIAN,
	ROW_LINUX_EXIT,
	ROW_QEMU_LINUX,
	/* vsock to a Linux clone (vsock_rows.c), at 256 MiB only. */
	ROW_VSOCK_REPLY,
	NROWS
};

#define ROW_NONE (-1)

struct bench_row_def {
	const char *name;
	const char *unit;       /* "us" (times), "KiB" or "count" */
	int ratio_vs;           /* the row this one is divided by, or ROW_NONE */
	const char *what;       /* one line for the docs and --list */
	const char *pending;    /* note while no runner fills it, or NULL */
};

extern const struct bench_row_def bench_rows[NROWS];

/* Extra ratios printed side by side for every size: num's p50 / den's p50. */
struct bench_ratio {
	int num, den;
};

extern const struct bench_ratio bench_ratios[];
extern const unsigned bench_nratios;

/* A goal a row must meet, checked in the summary after the table. */
enum bench_target_kind {
	TARGET_RATIO_MAX,   /* p50 / p50 of ratio_vs <= limit at every measured size */
	TARGET_P50_MAX,     /* p50 <= limit at every measured size */
	TARGET_FLAT_MAX,    /* p50 at the largest size / p50 at the smallest <= limit */
	TARGET_EXCESS_MAX,  /* p50 - p50 of row2 <= limit at every size both have */
	TARGET_P50_MIN,     /* p50 >= limit at every measured size */
	TARGET_SPEEDUP_MIN, /* p50 of row2 / p50 >= limit: row is that many times faster */
};

struct bench_target {
	enum bench_target_kind kind;
	int row, row2;      /* row2: TARGET_EXCESS_MAX and TARGET_SPEEDUP_MIN only */
	double limit;       /* in the row's unit, or a plain ratio */
	uint64_t at_size;   /* bytes: judged at that size only; 0: at every size */
};

extern const struct bench_target bench_targets[];
extern const unsigned bench_ntargets;

struct bench_cell {
	bool done;
	bool scaled;            /* derived from a smaller size, see note */
	unsigned n;             /* samples */
	double p50, p99;        /* in the row's unit */
	char note[BENCH_NOTE_MAX];
};

struct bench_results {
	struct bench_cell cell[NROWS][BENCH_MAX_SIZES];
};

/* What runners share: the config, the KVM handle, the results. */
struct bench_ctx {
	const struct bench_cfg *cfg;
	struct kvm_host kvm;
	bool have_kvm;
	struct msr_list msrs;
	bool have_msrs;
	char tmpdir[64];         /* scratch files (QEMU state, sockets) */
	struct bench_results res;
};

/* A runner measures its rows at cfg->sizes[si]. Returns 0 or -errno. */
typedef int (*bench_runner)(struct bench_ctx *ctx, unsigned si);

/* Samples in nanoseconds. */
struct samples {
	uint64_t *ns;
	unsigned n, cap;
};

int samples_init(struct samples *s, unsigned cap);
void samples_free(struct samples *s);
void samples_add(struct samples *s, uint64_t ns);
/* Nearest-rank percentile (0 < p <= 100) of the samples; sorts them. */
uint64_t samples_pct(struct samples *s, double p);

uint64_t now_ns(void);

/* Fill a time row's cell from samples (converted to us). */
void cell_set_samples(struct bench_ctx *ctx, int row, unsigned si, struct samples *s);
/* Fill a cell with explicit values in the row's unit. */
void cell_set(struct bench_ctx *ctx, int row, unsigned si, unsigned n, double p50, double p99);
/* Attach a note (printf-style) to a cell; an empty cell then says why. */
void cell_note(struct bench_ctx *ctx, int row, unsigned si, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* How many iterations for an operation whose cost grows with size. */
unsigned iters_for_size(const struct bench_cfg *cfg, unsigned base, uint64_t size);

/* "64M", "1G", "16 GiB" style for tables and notes. */
const char *size_str(uint64_t size, char *buf, unsigned len);

/* Runners. */
int bench_cold_vm(struct bench_ctx *ctx, unsigned si);
int bench_map_base(struct bench_ctx *ctx, unsigned si);
int bench_proc_fork(struct bench_ctx *ctx, unsigned si);
int bench_memcpy(struct bench_ctx *ctx, unsigned si);
int bench_qemu(struct bench_ctx *ctx, unsigned si);
int bench_fork(struct bench_ctx *ctx, unsigned si);
int bench_fork_first(struct bench_ctx *ctx, unsigned si);
int bench_clones(struct bench_ctx *ctx, unsigned si);
int bench_linux(struct bench_ctx *ctx, unsigned si);
int bench_disk(struct bench_ctx *ctx, unsigned si);
int bench_vsock(struct bench_ctx *ctx, unsigned si);

/*
 * A VMM with booted guests to fork (fork_rows.c; fork_first.c and
 * clone_rows.c use it too).
 * Guests' consoles and clones' consoles go nowhere.
 */
struct fork_env {
	struct vmm *vmm;
	const struct bench_cfg *cfg;
};

int fork_env_init(struct fork_env *env, const struct bench_cfg *cfg);
void fork_env_fini(struct fork_env *env);
/* Warm shells for VMs of this size (their CPUID mask: like vm's). */
int fork_env_pool(struct fork_env *env, const struct vm *vm, unsigned target);
/* Boot guest (a name in guest_dir) and wait until it reports once. */
int fork_env_boot(struct fork_env *env, const char *guest, const char *cmdline, uint64_t size,
		  struct vm **out);
/* Fork one child (started); *child is referenced. */
int fork_env_fork(struct vm *parent, bool resume_parent, struct vm **child,
		  struct fork_stats *st);
/* Unregister and destroy a VM; put: the caller holds a reference too (a child). */
void fork_env_drop(struct fork_env *env, struct vm *vm, bool put);
/* Before a timed fork: the pool (if any) full and prepared; then sleep settle_ms. */
int fork_env_ready(struct fork_env *env, unsigned settle_ms);
/* A paused template's untimed first fork: freezes its base, captures its state. */
int fork_env_first_fork(struct fork_env *env, struct vm *tmpl);
/* Forks of a paused template per size. */
unsigned fork_env_iters(const struct bench_cfg *cfg);
void sleep_ms(unsigned ms);
double p50_us(struct samples *s);

#define WARM_SHELLS        4
#define WAIT_FORK_CMDLINE  "timeout_ms=600000"

/* Output (report.c). Each returns 0 or -errno. */
void report_table(const struct bench_ctx *ctx);
int report_csv(const struct bench_ctx *ctx, const char *path);
int report_json(const struct bench_ctx *ctx, const char *path);
/* gnuplot data of the rows in unit ("us": written in ms; "KiB"). */
int report_plot_data(const struct bench_ctx *ctx, const char *path, const char *unit);

/* Ratio of row to its ratio_vs row at size si, or 0 when either is missing. */
double cell_ratio(const struct bench_ctx *ctx, int row, int vs, unsigned si);

#endif
