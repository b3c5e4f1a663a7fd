/*
 * fork_smp: fork_state's computation (guest/fork_work.h) on every vCPU at once,
 * for pause, snapshot and fork tests of SMP VMs. The host runs it unforked for
 * the reference results, then forks it at random moments: every VM must report
 * the same per-CPU results and exit 0.
 *
 * cpl0_setup starts the other CPUs. Every CPU, the boot CPU included, then
 * does its own setup at CPL0 through rt_cpl0_call: its FS and GS bases to its
 * own two tables, KERNEL_GS_BASE to FW_KGS_BASE + cpu * 0x1000, TSC_AUX to
 * FW_TSC_AUX + cpu (when the CPU has RDTSCP or RDPID), AVX when CPUID shows
 * XSAVE, AVX and AVX2, and its own periodic LAPIC timer. It runs the
 * computation at CPL3 with a seed and tables of its own (CPU index cpu: the
 * order in which the APs took their indexes does not matter), checks its MSRs
 * and tables and says it is done. The boot CPU waits (bounded by
 * FSMP_WAIT_CYCLES TSC cycles) for all of them.
 *
 * cmdline: "iters=N" iterations per CPU (default FSMP_DEFAULT_ITERS: about
 *          250 ms at CPL3), "period_us=N" timer period (default 1000), "avx=0"
 *          leave AVX off.
 * LOG:    "fork_smp: cpu K computing" as each CPU starts its computation,
 *         one line per CPU "fork_smp: cpu K result 0x... ymm 0x... status 0x..",
 *         then "fork_smp: ok" or what failed
 * REPORT: [0] NCPUS, [1] CPUs that finished, [2] timer ticks (all CPUs) while the
 *         boot CPU computed and waited, [3] CLONE_ID at the end, [4] GENERATION
 *         at the end, [5] YMM tested on every CPU (1) or skipped (0); then for
 *         each CPU k = 0..NCPUS-1: [6 + 3k] its result (fw_result: its seed and
 *         iters only), [7 + 3k] hash of its YMM upper halves (0 when skipped),
 *         [8 + 3k] its failed checks (the exit bits below; 0 when all held)
 * exit:   0 when every CPU finished and all its checks held, else the OR of:
 *         0x01 a CPU did not finish in time, 0x02 wrong TSC_AUX, 0x04 wrong
 *         KERNEL_GS_BASE, 0x08 FS/GS check failed, 0x10 TSC went backwards,
 *         0x20 the tick count went backwards or no tick came on a computation
 *         of FSMP_TICK_ITERS or more
 * Reference: CPU 0 computes what fork_state does (same seed and tables); with
 * the default iters CPU 1 gives 0x59935bea1e10e797 (YMM 0xb45054a30dcbd9b2).
 */
#include "fork_work.h"

#define FSMP_DEFAULT_ITERS 30000000ULL
#define FSMP_TICK_ITERS    3000000ULL
#define FSMP_WAIT_CYCLES   60000000000ULL /* tens of seconds: only a failure waits so long */
#define FSMP_SEED          0x5eedf0c5ULL
#define FSMP_FS_KEY        0xf5f5f5f5f5f5f5f5ULL
#define FSMP_GS_KEY        0x6a6a6a6a6a6a6a6aULL
#define FSMP_CPU_STEP      0x9e3779b97f4a7c15ULL /* seeds and keys differ per CPU */

#define FSMP_NOT_DONE   0x01
#define FSMP_BAD_TSC_AUX 0x02
#define FSMP_BAD_KGS    0x04
#define FSMP_BAD_FSGS   0x08
#define FSMP_BAD_TSC    0x10
#define FSMP_BAD_TICKS  0x20

struct fsmp_cpu {
	struct fw_ctx ctx;
	struct fw_table fs, gs;
	uint64_t caps, result, ymm, status, ticks;
	volatile uint32_t done;
};

static struct fsmp_cpu cpus[RT_MAX_CPUS];
static uint64_t iters, period_us, allow_avx;

/* arg: CPU index | allow AVX << 8, as fw_cpl0_setup_cpu takes it. */
static RT_CPL0 uint64_t cpu_setup(uint64_t arg)
{
	struct fsmp_cpu *c = &cpus[arg & 0xff];

	rt_timer_start((uint32_t)period_us);
	return fw_cpl0_setup_cpu(arg, &c->fs, &c->gs);
}

static uint64_t cpu_checks(struct fsmp_cpu *c, unsigned cpu)
{
	uint64_t status = 0, key = cpu * FSMP_CPU_STEP;

	if ((c->caps & (FW_CAP_RDTSCP | FW_CAP_RDPID)) && fw_tsc_aux(c->caps) != FW_TSC_AUX + cpu)
		status |= FSMP_BAD_TSC_AUX;
	if (rt_cpl0_call(fw_cpl0_rdmsr, MSR_KERNEL_GS_BASE) != FW_KGS_BASE + cpu * 0x1000ULL)
		status |= FSMP_BAD_KGS;
	if (fw_fs_self() != (uintptr_t)&c->fs || fw_gs_self() != (uintptr_t)&c->gs ||
	    !fw_table_intact(&c->fs, FSMP_FS_KEY ^ key) ||
	    !fw_table_intact(&c->gs, FSMP_GS_KEY ^ key))
		status |= FSMP_BAD_FSGS;
	if (c->ctx.tsc_backwards || rt_rdtsc() < c->ctx.tsc_prev)
		status |= FSMP_BAD_TSC;
	if (c->ctx.ticks_backwards || (c->ticks == 0 && iters >= FSMP_TICK_ITERS))
		status |= FSMP_BAD_TICKS;
	return status;
}

/* Each CPU at CPL3: its setup, its computation, its checks. */
static void cpu_work(unsigned cpu)
{
	struct fsmp_cpu *c = &cpus[cpu];
	uint64_t key = cpu * FSMP_CPU_STEP, ticks0;

	c->caps = rt_cpl0_call(cpu_setup, cpu | allow_avx << 8);
	fw_table_fill(&c->fs, FSMP_FS_KEY ^ key);
	fw_table_fill(&c->gs, FSMP_GS_KEY ^ key);
	rt_printf("fork_smp: cpu %u computing\n", cpu); /* tests wait for it to fork mid-way */
	ticks0 = rt_ticks();
	fw_run(&c->ctx, FSMP_SEED + key, iters, c->caps & FW_CAP_AVX);
	c->ticks = rt_ticks() - ticks0;
	c->result = fw_result(&c->ctx);
	c->ymm = c->caps & FW_CAP_AVX ? fw_ymm_hash(&c->ctx) : 0;
	c->status = cpu_checks(c, cpu);
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
}

RT_CPL0 void cpl0_setup(void)
{
	/* Read here, before the APs start: they all use them. */
	iters = rt_arg_u64("iters", FSMP_DEFAULT_ITERS);
	period_us = rt_arg_u64("period_us", 1000);
	allow_avx = rt_arg_u64("avx", 1) ? 1 : 0;
	rt_smp_start(cpu_work);
}

static unsigned wait_done(unsigned n)
{
	uint64_t start = rt_rdtsc();
	unsigned done;

	for (;;) {
		done = 0;
		for (unsigned i = 0; i < n; i++)
			done += __atomic_load_n(&cpus[i].done, __ATOMIC_SEQ_CST);
		if (done == n || rt_rdtsc() - start > FSMP_WAIT_CYCLES)
			return done;
		rt_pause();
	}
}

int main(void)
{
	unsigned n = rt_ncpus() < RT_MAX_CPUS ? rt_ncpus() : RT_MAX_CPUS;
	uint64_t ticks0 = rt_ticks(), status = 0, ymm_all = 1;
	unsigned done;

	cpu_work(0);
	done = wait_done(n);
	if (done < n)
		status |= FSMP_NOT_DONE;
	for (unsigned i = 0; i < n; i++) {
		struct fsmp_cpu *c = &cpus[i];

		if (!c->done)
			continue;
		status |= c->status;
		ymm_all &= c->caps & FW_CAP_AVX;
		rt_printf("fork_smp: cpu %u result 0x%lx ymm 0x%lx status 0x%lx, %lu ticks\n", i,
			  c->result, c->ymm, c->status, c->ticks);
	}
	if (status)
		rt_printf("fork_smp: FAILED 0x%lx, %u of %u CPUs finished\n", status, done, n);
	else
		rt_printf("fork_smp: ok, %u CPUs\n", n);
	rt_report(n);
	rt_report(done);
	rt_report(rt_ticks() - ticks0);
	rt_report(rt_clone_id());
	rt_report(rt_generation());
	rt_report(ymm_all);
	for (unsigned i = 0; i < n; i++) {
		rt_report(cpus[i].result);
		rt_report(cpus[i].ymm);
		rt_report(cpus[i].done ? cpus[i].status : FSMP_NOT_DONE);
	}
	return (int)status;
}
