/*
 * Interrupt and exception entry. One 16-byte stub per vector (the IDT points
 * at rt_vector_stubs + vector * 16): it pushes a dummy error code where the
 * CPU pushes none, then the vector, and joins rt_trap_common, which saves the
 * general registers and calls rt_trap(frame). XMM registers are not saved:
 * the runtime's CPL0 C code is built without SSE. The LAPIC timer has its own
 * short path, because CPL0 code is expensive on some hosts.
 */
#include "x86.h"

	.text
	.balign RT_STUB_SIZE
	.globl rt_vector_stubs
rt_vector_stubs:
	.Lvec = 0
	.rept RT_NVECTORS
	.balign RT_STUB_SIZE
	.if .Lvec == RT_VEC_TIMER
	jmp rt_timer_entry
	.elseif .Lvec == RT_VEC_SPURIOUS
	iretq                   /* spurious: no EOI */
	.else
	/* Exceptions that push an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX. */
	.if !(.Lvec == 8 || (.Lvec >= 10 && .Lvec <= 14) || .Lvec == 17 || .Lvec == 21 || .Lvec == 29 || .Lvec == 30)
	pushq $0
	.endif
	pushq $.Lvec
	jmp rt_trap_common
	.endif
	.Lvec = .Lvec + 1
	.endr
	.balign RT_STUB_SIZE
	.globl rt_vector_stubs_end
rt_vector_stubs_end:

rt_trap_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi          /* 16-byte aligned: the CPU aligns, then 22 quadwords */
	cld
	call rt_trap
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp           /* vector and error code */
	iretq

rt_timer_entry:
	lock incq rt_tick_count(%rip)
	push %rax
	mov $(LAPIC_BASE + LAPIC_EOI), %eax
	movl $0, (%rax)
	pop %rax
	iretq

	.bss
	.balign 8
	.globl rt_tick_count
rt_tick_count:
	.quad 0

	.section .note.GNU-stack, "", @progbits
