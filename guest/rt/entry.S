/*
 * Entry points: the boot CPU from the VMM (64-bit, CPL0, IF=0, RSI = zero
 * page), the other CPUs from the trampoline, the switch to CPL3, and parking.
 */
#include "x86.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	cld
	mov %rsi, rt_boot_params(%rip)
	/* Leave the VMM's boot stack (in its low pages) for CPU 0's own. */
	lea rt_kstacks + RT_KSTACK_SIZE(%rip), %rsp
	xor %ebp, %ebp
	call rt_bsp_main
	jmp rt_park_cpl0

	.text
/* From the trampoline: long mode on its GDT, no stack yet. Take a CPU index. */
	.globl rt_ap_entry64
rt_ap_entry64:
	cld
	mov $1, %eax
	lock xadd %eax, rt_next_cpu(%rip)
	cmp $RT_MAX_CPUS, %eax
	jae rt_park_cpl0
	mov %eax, %edi
	lea 1(%rax), %rdx
	shl $RT_KSTACK_SHIFT, %rdx
	lea rt_kstacks(%rip), %rsp
	add %rdx, %rsp
	xor %ebp, %ebp
	call rt_ap_main
	jmp rt_park_cpl0

/* void rt_load_segments(gdtr, idtr): switch to this CPU's GDT, IDT and TSS. */
	.globl rt_load_segments
rt_load_segments:
	lgdt (%rdi)
	lidt (%rsi)
	mov $RT_SEL_KDATA, %eax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %eax, %eax
	mov %ax, %fs
	mov %ax, %gs
	/* Reload CS with a far return, as Linux does. */
	pushq $RT_SEL_KCODE
	lea 1f(%rip), %rax
	push %rax
	lretq
1:	mov $RT_SEL_TSS, %eax
	ltr %ax
	ret

/* void rt_enter_user(fn, arg, rsp): iretq to fn(arg) at CPL3 with IF=1. */
	.globl rt_enter_user
rt_enter_user:
	pushq $RT_SEL_UDATA
	lea -8(%rdx), %rax      /* as if fn had been called: RSP+8 16-byte aligned */
	push %rax
	pushq $(RFLAGS_IF | RFLAGS_FIXED)
	pushq $RT_SEL_UCODE
	push %rdi
	mov %esi, %edi
	xor %eax, %eax
	mov %ax, %ds
	mov %ax, %es
	iretq

/*
 * uint64_t rt_cpl0_trap(fn, arg), from CPL3: an int3 that rt_trap knows by its
 * address (rt_cpl0_trap_ret, where the trap leaves RIP); it runs fn(arg) at
 * CPL0 and returns the value in RAX of the frame.
 */
	.globl rt_cpl0_trap, rt_cpl0_trap_ret
rt_cpl0_trap:
	mov %rdi, %rax
	mov %rsi, %rdi
	int3
rt_cpl0_trap_ret:
	ret

/* void rt_park(void): stop this CPU. At CPL3 a #UD at rt_park_insn gets us to CPL0. */
	.globl rt_park, rt_park_insn, rt_park_cpl0
rt_park:
	mov %cs, %eax
	test $3, %eax
	jz rt_park_cpl0
rt_park_insn:
	ud2
	jmp rt_park
rt_park_cpl0:
	cli
1:	hlt
	jmp 1b

	.data
	.globl rt_next_cpu
	.balign 4
rt_next_cpu:
	.long 1                 /* CPU 0 is the boot CPU */

	.section .note.GNU-stack, "", @progbits
