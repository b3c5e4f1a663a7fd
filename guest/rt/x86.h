/*
 * x86-64 definitions the guest runtime shares between C and assembly:
 * selectors, vectors, control-register bits, LAPIC registers, and (in C) the
 * few privileged instructions it uses. Only CPL0 code may call the
 * privileged helpers.
 */
#ifndef GUEST_RT_X86_H
#define GUEST_RT_X86_H

/* Our GDT (one per CPU). User data sits below user code, the order SYSRET expects. */
#define RT_SEL_KCODE   0x08
#define RT_SEL_KDATA   0x10
#define RT_SEL_UDATA   0x1b /* index 3, RPL 3 */
#define RT_SEL_UCODE   0x23 /* index 4, RPL 3 */
#define RT_SEL_TSS     0x28 /* 16-byte system descriptor: indexes 5 and 6 */
#define RT_GDT_ENTRIES 7

/* Interrupt vectors. */
#define RT_VEC_DE        0
#define RT_VEC_BP        3
#define RT_VEC_UD        6
#define RT_VEC_DF        8
#define RT_VEC_GP        13
#define RT_VEC_PF        14
#define RT_NEXCEPTIONS   32
#define RT_VEC_TIMER     32
#define RT_VEC_SPURIOUS  47 /* low nibble all ones, as P6-era APICs require */
#define RT_NVECTORS      48 /* IDT entries we fill; the rest are not present */
#define RT_STUB_SIZE     16 /* bytes per vector entry stub */

/* Memory the runtime reserves per CPU (in .bss, zeroed by the VMM). */
#define RT_MAX_CPUS      64
#define RT_KSTACK_SHIFT  13 /* 8 KiB CPL0 stack: interrupts, exceptions, setup */
#define RT_KSTACK_SIZE   (1 << RT_KSTACK_SHIFT)
#define RT_USTACK_SIZE   (16 * 1024)
#define RT_ISTACK_SIZE   4096 /* #DF stack (IST1): room for the fatal-path printf */

/* Control and model-specific registers. */
#define CR0_MP   (1 << 1)
#define CR0_EM   (1 << 2)
#define CR0_TS   (1 << 3)
#define CR4_PAE       (1 << 5)
#define CR4_OSFXSR    (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define CR4_PCIDE     (1 << 17)
#define CR4_OSXSAVE   (1 << 18)
#define MSR_EFER      0xc0000080
#define MSR_FS_BASE   0xc0000100
#define MSR_GS_BASE   0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX   0xc0000103
#define EFER_LMA      (1 << 10)
#define RFLAGS_IF     (1 << 9)
#define RFLAGS_FIXED  (1 << 1)

/* xAPIC registers (MMIO, 32-bit accesses at 16-byte strides). */
#define LAPIC_BASE        0xfee00000
#define LAPIC_ID          0x020
#define LAPIC_TPR         0x080
#define LAPIC_EOI         0x0b0
#define LAPIC_SVR         0x0f0
#define LAPIC_ICR_LO      0x300
#define LAPIC_ICR_HI      0x310
#define LAPIC_LVT_TIMER   0x320
#define LAPIC_LVT_LINT0   0x350
#define LAPIC_TIMER_INIT  0x380
#define LAPIC_TIMER_CUR   0x390
#define LAPIC_TIMER_DIV   0x3e0
#define LAPIC_SVR_ENABLE  (1 << 8)
#define LAPIC_LVT_MASKED  (1 << 16)
#define LAPIC_TIMER_PERIODIC (1 << 17)
#define LAPIC_DIV_16      0x3
#define ICR_BUSY          (1 << 12)
#define ICR_INIT          (5 << 8)
#define ICR_STARTUP       (6 << 8)
#define ICR_ASSERT        (1 << 14)
#define ICR_LEVEL         (1 << 15)
#define ICR_ALL_BUT_SELF  (3 << 18)

/* The AP trampoline: copied here, started by SIPI vector RT_TRAMP_BASE >> 12. */
#define RT_TRAMP_BASE     0x10000

#ifndef __ASSEMBLER__
#include <stdint.h>

struct rt_desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	asm volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline void write_cr0(uint64_t v)
{
	asm volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static inline uint64_t read_cr2(void)
{
	uint64_t v;
	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline uint64_t read_cr3(void)
{
	uint64_t v;
	asm volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline void write_cr3(uint64_t v)
{
	asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline uint64_t read_cr4(void)
{
	uint64_t v;
	asm volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void write_cr4(uint64_t v)
{
	asm volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (uint64_t)hi << 32;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg);
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = v;
}
#endif /* __ASSEMBLER__ */

#endif
