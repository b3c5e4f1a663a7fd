/*
 * The deterministic CPL3 computation of the fork proofs (fork_state, fork_smp):
 * one asm loop that keeps its whole state in registers for its whole run, so
 * that a register or MSR that a pause, snapshot or fork loses or corrupts
 * changes the result.
 *
 * Live state: ten accumulators (rbx rsi r8-r15), the iteration counter (rcx),
 * the context pointer (rdi) and all sixteen XMM registers; with AVX2 the
 * loop runs on the full YMM registers instead, whose upper halves evolve on
 * their own. Each iteration mixes into the accumulators xmm15, one word of the
 * FS-relative table and one of the GS-relative table (indexes taken from the
 * state) and the counter; each step is invertible, so a changed value at any
 * point gives a different end state. Every 4096 iterations it checks that the
 * TSC and the tick count (rt_tick_count) did not go backwards.
 *
 * The result (fw_result) depends only on the seed, the table keys and the
 * iteration count: the same on every host, AVX or not; fw_ymm_hash covers
 * the upper halves.
 */
#ifndef GUEST_FORK_WORK_H
#define GUEST_FORK_WORK_H

#include <stddef.h>

#include "rt.h"
#include "x86.h"

#define FW_TABLE_WORDS 256               /* u64 words in each FS and GS table */
#define FW_KGS_BASE    0xffff9abc12345000ULL /* KERNEL_GS_BASE of CPU n: + n * 0x1000 */
#define FW_TSC_AUX     0x7e5c0a11U       /* TSC_AUX of CPU n: + n */

/* Capabilities fw_cpl0_setup_cpu found (and enabled). */
#define FW_CAP_AVX     1 /* XSAVE, AVX, AVX2 and XCR0 SSE|AVX: the loop uses YMM */
#define FW_CAP_RDTSCP  2 /* TSC_AUX set; read it with RDTSCP */
#define FW_CAP_RDPID   4 /* TSC_AUX set; read it with RDPID */

/*
 * A table the loop reads through FS or GS. self, which the loop never reads
 * (so the result does not depend on where the tables are linked), is the
 * table's own address, as in TLS: %fs:FW_SELF shows whether the base is right.
 */
struct fw_table {
	uint64_t word[FW_TABLE_WORDS];
	uint64_t self;
} __attribute__((aligned(64)));
#define FW_SELF "2048" /* offsetof(struct fw_table, self), for asm */

struct fw_ctx {
	uint64_t gpr[10];    /* rbx rsi r8..r15: seeds in, end values out */
	uint64_t vec[16][4]; /* ymm0-15 (xmm: words 0-1): seeds in, end values out */
	uint64_t tsc_prev, tsc_backwards;
	uint64_t ticks_prev, ticks_backwards;
	uint64_t checks;     /* how often the TSC and tick checks ran */
} __attribute__((aligned(32)));

static inline uint64_t fw_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ x >> 31;
}

static inline RT_CPL0 void fw_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* AVX2 with the OS's part done: CR4.OSXSAVE and XCR0 = x87 | SSE | AVX. */
static inline RT_CPL0 bool fw_cpl0_enable_avx(void)
{
	uint32_t r[4];

	fw_cpuid(0, 0, r);
	if (r[0] < 0xd)
		return false;
	fw_cpuid(1, 0, r);
	if (!(r[2] & 1U << 26) || !(r[2] & 1U << 28)) /* XSAVE, AVX */
		return false;
	fw_cpuid(7, 0, r);
	if (!(r[1] & 1U << 5)) /* AVX2 */
		return false;
	fw_cpuid(0xd, 0, r);
	if ((r[0] & 7) != 7) /* XCR0 may hold x87, SSE and AVX state */
		return false;
	write_cr4(read_cr4() | CR4_OSXSAVE);
	asm volatile("xsetbv" : : "c"(0), "a"(7), "d"(0));
	return true;
}

/*
 * Per-CPU setup at CPL0: FS and GS bases to this CPU's tables, KERNEL_GS_BASE
 * and TSC_AUX to this CPU's values, AVX when allowed and present.
 * arg: CPU index | allow_avx << 8. Returns FW_CAP_* bits.
 */
static inline RT_CPL0 uint64_t fw_cpl0_setup_cpu(uint64_t arg, struct fw_table *fs,
						 struct fw_table *gs)
{
	unsigned cpu = arg & 0xff;
	uint64_t caps = 0;
	uint32_t r[4];

	wrmsr(MSR_FS_BASE, (uintptr_t)fs);
	wrmsr(MSR_GS_BASE, (uintptr_t)gs);
	wrmsr(MSR_KERNEL_GS_BASE, FW_KGS_BASE + cpu * 0x1000ULL);
	fw_cpuid(0x80000000, 0, r);
	if (r[0] >= 0x80000001) {
		fw_cpuid(0x80000001, 0, r);
		if (r[3] & 1U << 27)
			caps |= FW_CAP_RDTSCP;
	}
	fw_cpuid(7, 0, r);
	if (r[2] & 1U << 22)
		caps |= FW_CAP_RDPID;
	/* Without either, KVM refuses the MSR (#GP) */
	if (caps & (FW_CAP_RDTSCP | FW_CAP_RDPID))
		wrmsr(MSR_TSC_AUX, FW_TSC_AUX + cpu);
	if ((arg >> 8 & 1) && fw_cpl0_enable_avx())
		caps |= FW_CAP_AVX;
	return caps;
}

static inline RT_CPL0 uint64_t fw_cpl0_rdmsr(uint64_t msr)
{
	return rdmsr((uint32_t)msr);
}

/* At CPL3: fill a table from key. */
static inline void fw_table_fill(struct fw_table *t, uint64_t key)
{
	t->self = (uintptr_t)t;
	for (unsigned i = 0; i < FW_TABLE_WORDS; i++)
		t->word[i] = fw_mix(key ^ i);
}

/* The table is still as fw_table_fill(t, key) left it. */
static inline bool fw_table_intact(const struct fw_table *t, uint64_t key)
{
	bool ok = t->self == (uintptr_t)t;

	for (unsigned i = 0; i < FW_TABLE_WORDS; i++)
		ok &= t->word[i] == fw_mix(key ^ i);
	return ok;
}

static inline void fw_ctx_init(struct fw_ctx *c, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < 10; i++)
		c->gpr[i] = fw_mix(seed + i);
	for (unsigned i = 0; i < 16 * 4; i++)
		c->vec[i / 4][i % 4] = fw_mix(seed + 0x100 + i);
}

/* %fs:FW_SELF and %gs:FW_SELF: the tables' own addresses when the bases are right. */
static inline uint64_t fw_fs_self(void)
{
	uint64_t v;
	asm volatile("mov %%fs:" FW_SELF ", %0" : "=r"(v) : : "memory");
	return v;
}

static inline uint64_t fw_gs_self(void)
{
	uint64_t v;
	asm volatile("mov %%gs:" FW_SELF ", %0" : "=r"(v) : : "memory");
	return v;
}

/* TSC_AUX as RDTSCP or RDPID show it at CPL3; 0 when the CPU has neither. */
static inline uint64_t fw_tsc_aux(uint64_t caps)
{
	uint32_t lo, hi, aux;
	uint64_t pid;

	if (caps & FW_CAP_RDTSCP) {
		asm volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
		return aux;
	}
	if (caps & FW_CAP_RDPID) {
		asm volatile("rdpid %0" : "=r"(pid));
		return pid;
	}
	return 0;
}

/* One iteration's general-register part; MOVQ moves xmm15's low word to rax. */
#define FW_GPR_STEP(MOVQ) \
	MOVQ " %%xmm15, %%rax\n add %%rax, %%r8\n" \
	"mov %%r8, %%rax\n shr $20, %%rax\n and $0xff, %%eax\n" \
	"add %%fs:0(,%%rax,8), %%r9\n rol $17, %%r9\n" \
	"mov %%r9, %%rdx\n shr $28, %%rdx\n and $0xff, %%edx\n" \
	"xor %%gs:0(,%%rdx,8), %%r10\n add %%rcx, %%r10\n" \
	"add %%r10, %%r11\n rol $29, %%r11\n" \
	"xor %%r11, %%r12\n mov %%r12, %%rax\n mul %%r13\n" \
	"add %%rax, %%r14\n xor %%rdx, %%r15\n" \
	"add %%r15, %%r13\n rol $11, %%r13\n" \
	"add %%r14, %%rbx\n rol $23, %%rbx\n" \
	"xor %%rbx, %%rsi\n rol $5, %%rsi\n add %%rsi, %%r8\n"

/* reg a += reg b, then rotate a's 32-bit lanes (within each 128-bit half). */
#define FW_X(a, b) "paddq %%xmm" #b ", %%xmm" #a "\n pshufd $0x39, %%xmm" #a ", %%xmm" #a "\n"
#define FW_Y(a, b) "vpaddq %%ymm" #b ", %%ymm" #a ", %%ymm" #a "\n" \
		   "vpshufd $0x39, %%ymm" #a ", %%ymm" #a "\n"
#define FW_VEC_STEP(S) \
	S(0, 1) S(1, 2) S(2, 3) S(3, 4) S(4, 5) S(5, 6) S(6, 7) S(7, 8) \
	S(8, 9) S(9, 10) S(10, 11) S(11, 12) S(12, 13) S(13, 14) S(14, 15) S(15, 0)

/* Every 4096 iterations: count TSC and tick-count steps backwards. */
#define FW_CHECK \
	"test $0xfff, %%ecx\n jnz 3f\n" \
	"rdtsc\n shl $32, %%rdx\n or %%rdx, %%rax\n" \
	"cmp %c[tp](%%rdi), %%rax\n jae 4f\n incq %c[tb](%%rdi)\n4:\n" \
	"mov %%rax, %c[tp](%%rdi)\n" \
	"mov rt_tick_count(%%rip), %%rax\n" \
	"cmp %c[kp](%%rdi), %%rax\n jae 5f\n incq %c[kb](%%rdi)\n5:\n" \
	"mov %%rax, %c[kp](%%rdi)\n incq %c[nc](%%rdi)\n" \
	"3:\n"

_Static_assert(offsetof(struct fw_table, self) == 2048, "FW_SELF");

#define FW_GPRS_LOAD \
	"mov %c[g]+0(%%rdi), %%rbx\n mov %c[g]+8(%%rdi), %%rsi\n" \
	"mov %c[g]+16(%%rdi), %%r8\n mov %c[g]+24(%%rdi), %%r9\n" \
	"mov %c[g]+32(%%rdi), %%r10\n mov %c[g]+40(%%rdi), %%r11\n" \
	"mov %c[g]+48(%%rdi), %%r12\n mov %c[g]+56(%%rdi), %%r13\n" \
	"mov %c[g]+64(%%rdi), %%r14\n mov %c[g]+72(%%rdi), %%r15\n"
#define FW_GPRS_STORE \
	"mov %%rbx, %c[g]+0(%%rdi)\n mov %%rsi, %c[g]+8(%%rdi)\n" \
	"mov %%r8, %c[g]+16(%%rdi)\n mov %%r9, %c[g]+24(%%rdi)\n" \
	"mov %%r10, %c[g]+32(%%rdi)\n mov %%r11, %c[g]+40(%%rdi)\n" \
	"mov %%r12, %c[g]+48(%%rdi)\n mov %%r13, %c[g]+56(%%rdi)\n" \
	"mov %%r14, %c[g]+64(%%rdi)\n mov %%r15, %c[g]+72(%%rdi)\n"

#define FW_LDX(n) "movdqu " #n "*32+%c[v](%%rdi), %%xmm" #n "\n"
#define FW_STX(n) "movdqu %%xmm" #n ", " #n "*32+%c[v](%%rdi)\n"
#define FW_LDY(n) "vmovdqu " #n "*32+%c[v](%%rdi), %%ymm" #n "\n"
#define FW_STY(n) "vmovdqu %%ymm" #n ", " #n "*32+%c[v](%%rdi)\n"
#define FW_ALL16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) \
		    M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

#define FW_LOOP(LOAD, STORE, MOVQ, VSTEP, TAIL) \
	FW_GPRS_LOAD FW_ALL16(LOAD) \
	"test %%rcx, %%rcx\n jz 2f\n" \
	"1:\n" FW_GPR_STEP(MOVQ) FW_VEC_STEP(VSTEP) FW_CHECK \
	"dec %%rcx\n jnz 1b\n" \
	"2:\n" FW_GPRS_STORE FW_ALL16(STORE) TAIL

#define FW_OPERANDS \
	: "+c"(iters) \
	: "D"(c), [g] "i"(offsetof(struct fw_ctx, gpr)), [v] "i"(offsetof(struct fw_ctx, vec)), \
	  [tp] "i"(offsetof(struct fw_ctx, tsc_prev)), \
	  [tb] "i"(offsetof(struct fw_ctx, tsc_backwards)), \
	  [kp] "i"(offsetof(struct fw_ctx, ticks_prev)), \
	  [kb] "i"(offsetof(struct fw_ctx, ticks_backwards)), \
	  [nc] "i"(offsetof(struct fw_ctx, checks)) \
	: "rax", "rbx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", \
	  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
	  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory"

static __attribute__((noinline, unused)) void fw_loop_sse(struct fw_ctx *c, uint64_t iters)
{
	asm volatile(FW_LOOP(FW_LDX, FW_STX, "movq", FW_X, "") FW_OPERANDS);
}

/* The same on YMM (VEX only: no SSE/AVX transitions); needs FW_CAP_AVX. */
static __attribute__((noinline, unused)) void fw_loop_avx(struct fw_ctx *c, uint64_t iters)
{
	asm volatile(FW_LOOP(FW_LDY, FW_STY, "vmovq", FW_Y, "vzeroupper\n") FW_OPERANDS);
}

/* Run the loop from seed; the TSC and tick checks start from now. */
static inline void fw_run(struct fw_ctx *c, uint64_t seed, uint64_t iters, bool avx)
{
	fw_ctx_init(c, seed);
	c->tsc_prev = rt_rdtsc();
	c->ticks_prev = rt_ticks();
	if (avx)
		fw_loop_avx(c, iters);
	else
		fw_loop_sse(c, iters);
}

/* Hash of the general registers and the XMM parts (words 0-1) of the end state. */
static inline uint64_t fw_result(const struct fw_ctx *c)
{
	uint64_t h = 0x6a09e667f3bcc908ULL;

	for (unsigned i = 0; i < 10; i++)
		h = fw_mix(h ^ c->gpr[i]);
	for (unsigned i = 0; i < 16; i++)
		h = fw_mix(fw_mix(h ^ c->vec[i][0]) ^ c->vec[i][1]);
	return h;
}

/* Hash of the YMM upper halves (words 2-3); meaningful only after fw_loop_avx. */
static inline uint64_t fw_ymm_hash(const struct fw_ctx *c)
{
	uint64_t h = 0xbb67ae8584caa73bULL;

	for (unsigned i = 0; i < 16; i++)
		h = fw_mix(fw_mix(h ^ c->vec[i][2]) ^ c->vec[i][3]);
	return h;
}

#endif
