/*
 * The AP trampoline. It is data in the image: the boot CPU copies
 * rt_tramp_start..rt_tramp_end to RT_TRAMP_BASE, fills rt_tramp_params and
 * sends INIT, SIPI, SIPI with vector RT_TRAMP_BASE >> 12. Each AP starts here
 * in real mode (CS = 0x1000, IP = 0), goes through 32-bit protected mode to
 * long mode on the boot CPU's page tables (CR3, CR4, EFER and CR0 are copied
 * from it) and jumps to rt_ap_entry64. Addresses are those of the copy.
 */
#include "x86.h"

#define T(label) (RT_TRAMP_BASE + (label) - rt_tramp_start)

	.section .rodata.tramp, "a"
	.balign 16
	.globl rt_tramp_start, rt_tramp_end, rt_tramp_params
	.code16
rt_tramp_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl tramp_gdtr - rt_tramp_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $T(tramp_pm)

	.code32
tramp_pm:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov T(tramp_cr4), %eax
	mov %eax, %cr4
	mov T(tramp_cr3), %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	mov T(tramp_efer), %eax
	xor %edx, %edx
	wrmsr
	mov T(tramp_cr0), %eax   /* paging on: long mode is active */
	mov %eax, %cr0
	ljmpl $0x18, $T(tramp_lm)

	.code64
tramp_lm:
	jmp *T(tramp_entry64)

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff /* 0x10: data */
	.quad 0x00af9a000000ffff /* 0x18: 64-bit code */
tramp_gdtr:
	.word 4 * 8 - 1
	.long T(tramp_gdt)

	.balign 8
rt_tramp_params:                 /* struct rt_tramp_params */
tramp_cr3:	.long 0
tramp_cr4:	.long 0
tramp_efer:	.long 0
tramp_cr0:	.long 0
tramp_entry64:	.quad 0
rt_tramp_end:

	.section .note.GNU-stack, "", @progbits
