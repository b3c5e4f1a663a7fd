/* The x86 exception vectors' names, for messages: the VMM's (vm-fork fuzz) and the guest runtime's. */
#ifndef CORE_X86_VECTORS_H
#define CORE_X86_VECTORS_H

#define X86_NVECTORS 32

/* NULL where a vector has no name of its own. */
static const char *const x86_vector_names[X86_NVECTORS] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound", "#UD invalid opcode", "#NM no FPU", "#DF double fault",
	"coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
	"#SS stack fault", "#GP general protection", "#PF page fault", "reserved",
	"#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error",
	"#VE virtualization", "#CP control protection",
};

#endif
