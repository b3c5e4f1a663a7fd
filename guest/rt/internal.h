/* Runtime internals shared by the runtime C files and assembly; guests use rt.h. */
#ifndef GUEST_RT_INTERNAL_H
#define GUEST_RT_INTERNAL_H

#include "rt.h"
#include "x86.h"

/* 64-bit TSS: only RSP0 and IST1 are used; no I/O bitmap (all ports denied at CPL3). */
struct rt_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iopb_offset;
} __attribute__((packed));

struct rt_cpu {
	uint64_t gdt[RT_GDT_ENTRIES];
	struct rt_tss tss __attribute__((aligned(128))); /* inside one page */
};

/* What the vector stubs push, lowest address first: the argument of rt_trap(). */
struct rt_trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* Parameters the boot CPU writes into the copied trampoline (trampoline.S). */
struct rt_tramp_params {
	uint32_t cr3, cr4, efer, cr0;
	uint64_t entry64;
};

extern uint8_t rt_kstacks[RT_MAX_CPUS][RT_KSTACK_SIZE];
extern uint64_t rt_boot_params;     /* GPA of the zero page, from RSI at entry */
extern void (*volatile rt_ap_fn)(unsigned cpu);

/* Assembly (entry.S, vectors.S, trampoline.S). */
extern const char rt_vector_stubs[];
extern const char rt_tramp_start[], rt_tramp_end[], rt_tramp_params[];
extern const char rt_park_insn[];   /* the ud2 a CPU at CPL3 executes to halt */
extern const char rt_cpl0_trap_ret[]; /* after the int3 of rt_cpl0_trap */
void rt_ap_entry64(void);
uint64_t rt_cpl0_trap(uint64_t (*fn)(uint64_t), uint64_t arg);
void rt_load_segments(const struct rt_desc_ptr *gdtr, const struct rt_desc_ptr *idtr);
rt_noreturn void rt_enter_user(void (*fn)(unsigned), unsigned arg, uint64_t rsp);
rt_noreturn void rt_park(void);     /* any CPL: stop this CPU for good */
rt_noreturn void rt_park_cpl0(void);

/* C entry points called from assembly. */
rt_noreturn void rt_bsp_main(void);
rt_noreturn void rt_ap_main(unsigned index);
void rt_trap(struct rt_trap_frame *f);

#endif
