/*
 * fork_state: a guest whose every register and MSR matters, for pause, snapshot
 * and fork tests. The host runs it once unforked for the reference result, then
 * pauses or forks it at random moments: every VM must end with the same [0]
 * (and [9]) and exit 0.
 *
 * cpl0_setup sets FS base and GS base (WRMSR) to two tables, KERNEL_GS_BASE
 * to FW_KGS_BASE (0xffff9abc12345000), TSC_AUX to FW_TSC_AUX (0x7e5c0a11,
 * when the CPU has RDTSCP or RDPID), enables AVX when CPUID (read at CPL0) shows
 * XSAVE, AVX and AVX2, and starts a periodic LAPIC timer. main (CPL3) runs
 * the computation of guest/fork_work.h: general registers, all 16 XMM
 * registers (YMM with AVX), %fs: and %gs: reads every iteration, TSC and
 * tick-count checks every 4096 iterations. Then it reads TSC_AUX with RDTSCP
 * (or RDPID) at CPL3 and KERNEL_GS_BASE at CPL0 (rt_cpl0_call), and checks
 * %fs:2048 and %gs:2048 (each table's own address) and the tables' contents.
 *
 * cmdline: "iters=N" iterations (default FS_DEFAULT_ITERS: about 250 ms at CPL3),
 *          "slow_irq=1" timer handler of about 100 instructions (emulated at CPL0
 *          on some hosts) that scrambles the registers it saves, so host pauses
 *          land inside it; "period_us=N" timer period (default 1000);
 *          "avx=0" leave AVX off; "expect=0x..." the [0] this run must give.
 * LOG:    "fork_state: computing" as the computation starts, then
 *         "fork_state: result 0x... ..." and "fork_state: ok" or what failed
 * REPORT: [0] result (fw_result: seed and iters only; the same on every host),
 *         [1] TSC_AUX seen by RDTSCP (or RDPID), 0 when CPUID (at CPL0) shows
 *         neither: then KVM refuses the MSR, and TSC_AUX is skipped,
 *         [2] KERNEL_GS_BASE seen at CPL0, [3] FS/GS check ok (1/0),
 *         [4] TSC monotonic (1/0), [5] timer ticks during the computation,
 *         [6] CLONE_ID at the end, [7] GENERATION at the end,
 *         [8] YMM tested (1) or skipped (0), [9] hash of the YMM upper halves
 *         (0 when skipped), [10] TSC cycles the computation took,
 *         [11] FW_CAP_* bits: 1 YMM tested, 2 RDTSCP, 4 RDPID
 * exit:   0 when every self-check holds, else the OR of: 0x01 result differs
 *         from expect=, 0x02 wrong TSC_AUX, 0x04 wrong KERNEL_GS_BASE, 0x08 FS/GS
 *         check failed, 0x10 TSC went backwards, 0x20 the tick count went
 *         backwards or no tick came in a computation of FS_TICK_ITERS or more
 * Reference (the computation does not depend on where things are linked):
 * default iters gives [0] 0x1159a5aa47cc3efb and, with YMM, [9] 0x908e4edbbf0415d8.
 */
#include "fork_work.h"

#define FS_DEFAULT_ITERS 30000000ULL
#define FS_TICK_ITERS    3000000ULL /* tens of milliseconds: ticks must come */
#define FS_SEED          0x5eedf0c5ULL
#define FS_FS_KEY        0xf5f5f5f5f5f5f5f5ULL
#define FS_GS_KEY        0x6a6a6a6a6a6a6a6aULL
#define FS_SLOW_LOOPS    18 /* x 5 instructions in the slow timer handler */

#define FS_BAD_RESULT  0x01
#define FS_BAD_TSC_AUX 0x02
#define FS_BAD_KGS     0x04
#define FS_BAD_FSGS    0x08
#define FS_BAD_TSC     0x10
#define FS_BAD_TICKS   0x20

static struct fw_table fs_table, gs_table;
static struct fw_ctx ctx;
static uint64_t caps;

/* Busy work of the slow timer handler; the asm below names them. */
void fs_slow_timer(void);
extern volatile uint64_t fs_irq_work;
volatile uint64_t fs_irq_work;

#define FS_STR2(x) #x
#define FS_STR(x) FS_STR2(x)
asm(".text\n"
    ".globl fs_slow_timer\n"
    "fs_slow_timer:\n"
    "	push %rax\n	push %rcx\n	push %rdx\n"
    "	mov fs_irq_work(%rip), %rax\n"
    "	mov $" FS_STR(FS_SLOW_LOOPS) ", %ecx\n"
    "1:	mov %rax, %rdx\n	rol $7, %rax\n	xor %rdx, %rax\n	add %rcx, %rax\n"
    "	dec %ecx\n	jnz 1b\n"
    "	mov %rax, %rdx\n	not %rcx\n" /* leave all three scrambled */
    "	mov %rax, fs_irq_work(%rip)\n"
    "	lock incq rt_tick_count(%rip)\n"
    "	mov $" FS_STR(LAPIC_BASE + LAPIC_EOI) ", %eax\n"
    "	movl $0, (%rax)\n"
    "	pop %rdx\n	pop %rcx\n	pop %rax\n"
    "	iretq\n");

RT_CPL0 void cpl0_setup(void)
{
	uint64_t avx = rt_arg_u64("avx", 1) ? 1 : 0;

	caps = fw_cpl0_setup_cpu(avx << 8, &fs_table, &gs_table);
	if (rt_arg_u64("slow_irq", 0))
		rt_set_handler(RT_VEC_TIMER, fs_slow_timer);
	rt_timer_start((uint32_t)rt_arg_u64("period_us", 1000));
}

static bool fsgs_ok(void)
{
	return fw_fs_self() == (uintptr_t)&fs_table && fw_gs_self() == (uintptr_t)&gs_table &&
	       fw_table_intact(&fs_table, FS_FS_KEY) && fw_table_intact(&gs_table, FS_GS_KEY);
}

static void report_all(const uint64_t *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		rt_report(v[i]);
}

int main(void)
{
	uint64_t iters = rt_arg_u64("iters", FS_DEFAULT_ITERS);
	bool avx = caps & FW_CAP_AVX, aux = caps & (FW_CAP_RDTSCP | FW_CAP_RDPID);
	uint64_t t0, ticks0, r[12];
	size_t len;
	int status = 0;

	fw_table_fill(&fs_table, FS_FS_KEY);
	fw_table_fill(&gs_table, FS_GS_KEY);
	rt_puts("fork_state: computing\n"); /* tests wait for it to fork mid-computation */
	t0 = rt_rdtsc();
	ticks0 = rt_ticks();
	fw_run(&ctx, FS_SEED, iters, avx);
	r[5] = rt_ticks() - ticks0;
	r[10] = rt_rdtsc() - t0;
	r[0] = fw_result(&ctx);
	r[1] = fw_tsc_aux(caps);
	r[2] = rt_cpl0_call(fw_cpl0_rdmsr, MSR_KERNEL_GS_BASE);
	r[3] = fsgs_ok();
	r[4] = ctx.tsc_backwards == 0 && rt_rdtsc() >= ctx.tsc_prev;
	r[6] = rt_clone_id();
	r[7] = rt_generation();
	r[8] = avx;
	r[9] = avx ? fw_ymm_hash(&ctx) : 0;
	r[11] = caps;

	if (rt_arg("expect", &len) && r[0] != rt_arg_u64("expect", 0))
		status |= FS_BAD_RESULT;
	if (aux && r[1] != FW_TSC_AUX)
		status |= FS_BAD_TSC_AUX;
	if (r[2] != FW_KGS_BASE)
		status |= FS_BAD_KGS;
	if (!r[3])
		status |= FS_BAD_FSGS;
	if (!r[4])
		status |= FS_BAD_TSC;
	if (ctx.ticks_backwards || (r[5] == 0 && iters >= FS_TICK_ITERS))
		status |= FS_BAD_TICKS;
	rt_printf("fork_state: result 0x%lx ymm %s 0x%lx tsc_aux %s, %lu iterations in %lu "
		  "cycles, %lu ticks, %lu checks, clone %lu gen %lu\n", r[0],
		  avx ? "tested" : "skipped", r[9], aux ? "tested" : "skipped", iters, r[10], r[5],
		  ctx.checks, r[6], r[7]);
	if (status)
		rt_printf("fork_state: FAILED 0x%x: tsc_aux 0x%lx kgs 0x%lx fsgs %lu tsc %lu "
			  "(back %lu) ticks back %lu\n", status, r[1], r[2], r[3], r[4],
			  ctx.tsc_backwards, ctx.ticks_backwards);
	else
		rt_puts("fork_state: ok\n");
	report_all(r, 12);
	return status;
}
