/*
 * Per-CPU setup at CPL0 (GDT, TSS, IDT, SSE, LAPIC) and the switch to CPL3.
 * Everything here runs once per CPU and is kept to a few hundred
 * instructions: CPL0 code is emulated on some hosts.
 */
#pragma GCC target("general-regs-only")
#include "internal.h"

static struct rt_cpu cpus[RT_MAX_CPUS];
uint8_t rt_kstacks[RT_MAX_CPUS][RT_KSTACK_SIZE] __attribute__((aligned(4096)));
static uint8_t ustacks[RT_MAX_CPUS][RT_USTACK_SIZE] __attribute__((aligned(4096)));
static uint8_t istacks[RT_MAX_CPUS][RT_ISTACK_SIZE] __attribute__((aligned(16)));
static uint64_t idt[RT_NVECTORS * 2] __attribute__((aligned(16))); /* shared by all CPUs */
static volatile unsigned online;
uint64_t rt_boot_params;

static const uint64_t gdt_template[RT_SEL_TSS / 8] = {
	0,
	0x00af9a000000ffffULL, /* 0x08 kernel code: 64-bit, DPL 0 */
	0x00cf92000000ffffULL, /* 0x10 kernel data */
	0x00cff2000000ffffULL, /* 0x18 user data: DPL 3 */
	0x00affa000000ffffULL, /* 0x20 user code: 64-bit, DPL 3 */
};

static void set_tss_descriptor(uint64_t *d, uint64_t base, uint32_t limit)
{
	d[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ULL << 40 | /* present, 64-bit TSS */
	       (uint64_t)(limit >> 16 & 0xf) << 48 | (base >> 24 & 0xff) << 56;
	d[1] = base >> 32;
}

/* Interrupt gates (IF cleared on entry); int3 may be raised from CPL3; #DF gets IST1. */
static void idt_set_gate(unsigned v, uint64_t addr)
{
	uint64_t type = v == RT_VEC_BP ? 0xee : 0x8e;

	idt[2 * v] = (addr & 0xffff) | (uint64_t)RT_SEL_KCODE << 16 |
		     (uint64_t)(v == RT_VEC_DF) << 32 | type << 40 | (addr >> 16 & 0xffff) << 48;
	idt[2 * v + 1] = addr >> 32;
}

static void idt_build(void)
{
	for (unsigned v = 0; v < RT_NVECTORS; v++)
		idt_set_gate(v, (uintptr_t)rt_vector_stubs + v * RT_STUB_SIZE);
}

void rt_set_handler(unsigned vector, void (*entry)(void))
{
	if (vector < RT_NVECTORS)
		idt_set_gate(vector, (uintptr_t)entry);
}

static void sse_enable(void)
{
	write_cr0((read_cr0() | CR0_MP) & ~(uint64_t)(CR0_EM | CR0_TS));
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

/* Software-enable the LAPIC; LINT0 (the 8259's ExtINT path) stays masked: we use no PIC. */
static void lapic_enable(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | RT_VEC_SPURIOUS);
}

static void cpu_init(unsigned index)
{
	struct rt_cpu *cpu = &cpus[index];
	struct rt_desc_ptr gdtr = { sizeof(cpu->gdt) - 1, (uintptr_t)cpu->gdt };
	struct rt_desc_ptr idtr = { sizeof(idt) - 1, (uintptr_t)idt };

	for (unsigned i = 0; i < RT_SEL_TSS / 8; i++)
		cpu->gdt[i] = gdt_template[i];
	cpu->tss.rsp[0] = (uintptr_t)rt_kstacks[index] + RT_KSTACK_SIZE;
	cpu->tss.ist[0] = (uintptr_t)istacks[index] + RT_ISTACK_SIZE;
	cpu->tss.iopb_offset = sizeof(cpu->tss);
	set_tss_descriptor(&cpu->gdt[RT_SEL_TSS / 8], (uintptr_t)&cpu->tss, sizeof(cpu->tss) - 1);
	rt_load_segments(&gdtr, &idtr);
	sse_enable();
	lapic_enable();
}

static uint64_t user_stack_top(unsigned index)
{
	return (uintptr_t)ustacks[index] + RT_USTACK_SIZE;
}

/* First code at CPL3 on every CPU: a clean x87/SSE state, then count ourselves in. */
static void cpu_online(void)
{
	uint32_t mxcsr = 0x1f80;

	asm volatile("fninit; ldmxcsr %0" : : "m"(mxcsr));
	__atomic_fetch_add(&online, 1, __ATOMIC_SEQ_CST);
}

unsigned rt_cpus_online(void)
{
	return online;
}

static void bsp_user(unsigned cpu __attribute__((unused)))
{
	cpu_online();
	rt_exit(main());
}

static void ap_user(unsigned cpu)
{
	cpu_online();
	if (rt_ap_fn)
		rt_ap_fn(cpu);
	rt_park();
}

void rt_bsp_main(void)
{
	idt_build();
	cpu_init(0);
	if (cpl0_setup)
		cpl0_setup();
	rt_enter_user(bsp_user, 0, user_stack_top(0));
}

void rt_ap_main(unsigned index)
{
	cpu_init(index);
	rt_enter_user(ap_user, index, user_stack_top(index));
}
