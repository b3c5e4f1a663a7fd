/*
 * A boot sector that SeaBIOS loads from a disk (tests/test_firmware.c): it
 * greets through the BIOS's serial service (INT 14h on COM1: SeaBIOS's
 * serial console would carry INT 10h there too, but holds back the last
 * bytes until some later BIOS call). It then switches to 32-bit protected
 * mode to reach vm-fork's control device (an MMIO page at 3.25 GiB that takes
 * 8-byte accesses: MMX movq), forks once, and each copy says its clone id on
 * COM1 and powers off through the ACPI sleep register. 512 bytes, at 0x7c00.
 */
#define CTL           0xd0000000
#define CTL_CLONE_ID  (CTL + 0x20)
#define CTL_FORK      (CTL + 0x40)
#define CTL_RESULT    (CTL + 0x48)
#define COM1          0x3f8
#define SLEEP_CTL     0x600
#define S5_OFF        (0x20 | (5 << 2))   /* SLP_EN | SLP_TYP 5 */

	.code16
	.text
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7c00, %sp
	mov $hello, %si
1:	lodsb
	test %al, %al
	jz 2f
	mov $0x01, %ah          /* INT 14h 01h: send the byte in al to serial port dx */
	xor %dx, %dx
	int $0x14
	jmp 1b
2:	lgdt gdt_desc
	mov %cr0, %eax
	or $1, %al
	mov %eax, %cr0
	ljmpl $0x08, $pm32

	.code32
pm32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	/* -EBUSY: the host was pausing the VM (a fork of its own) at that moment; again. */
1:	movq one, %mm0
	movq %mm0, CTL_FORK
	movq CTL_RESULT, %mm0
	movq %mm0, result
	cmpl $-16, result
	je 1b
	movq CTL_CLONE_ID, %mm0
	movq %mm0, id
	mov $said, %esi
	call puts
	mov id, %eax
	call putdec
	mov $forked, %esi
	call puts
	mov result, %eax
	call putdec
	mov $'\n', %al
	call putc
	mov $SLEEP_CTL, %dx
	mov $S5_OFF, %al
	out %al, %dx
3:	hlt
	jmp 3b

/* COM1, byte by byte: the UART's transmitter is always ready here. */
putc:
	mov $COM1, %dx
	out %al, %dx
	ret
puts:
	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret
/* eax in decimal (signed). */
putdec:
	test %eax, %eax
	jns 1f
	push %eax
	mov $'-', %al
	call putc
	pop %eax
	neg %eax
1:	mov $10, %ecx
	xor %ebx, %ebx
2:	xor %edx, %edx
	div %ecx
	push %edx
	inc %ebx
	test %eax, %eax
	jnz 2b
3:	pop %eax
	add $'0', %al
	call putc
	dec %ebx
	jnz 3b
	ret

	.p2align 3
one:	.quad 1
result:	.quad 0
id:	.quad 0
gdt:	.quad 0
	.quad 0x00cf9a000000ffff        /* 0x08: flat 32-bit code */
	.quad 0x00cf92000000ffff        /* 0x10: flat data */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt
hello:	.asciz "vm-fork boot sector: loaded by the BIOS\r\n"
said:	.asciz "boot sector: clone "
forked:	.asciz " forked, result "

	.org 510
	.word 0xaa55
