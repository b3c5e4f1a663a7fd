/*
 * The vm-fork guest runtime: what a test guest (guest/NAME.c) may use.
 * docs/guest-abi.md explains how a guest is entered and how to write one.
 *
 * A guest defines int main(void), which runs at CPL3 on the boot CPU; its
 * return value is the exit status. It may also define cpl0_setup(), which the
 * runtime calls at CPL0 on the boot CPU just before main: the only place for
 * privileged work (port I/O, starting the timer or the other CPUs). CPL0 code
 * is emulated instruction by instruction on some hosts, so keep it short.
 */
#ifndef GUEST_RT_RT_H
#define GUEST_RT_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/ctl_abi.h"

#define rt_noreturn __attribute__((noreturn))
#define rt_printf_fmt(a, b) __attribute__((format(printf, a, b)))
/* For functions that run at CPL0: no SSE, so handlers never touch user XMM state. */
#define RT_CPL0 __attribute__((target("general-regs-only")))

/* Exit statuses the runtime itself uses; guests use 0..0x6c for their own. */
#define RT_EXIT_PANIC       0x6d /* rt_panic() or RT_ASSERT() failed */
#define RT_EXIT_BAD_IRQ     0x6f /* an interrupt vector nobody handles */
#define RT_EXIT_FAULT_BASE  0x70 /* + vector (0..31): an exception no fixup expected */

int main(void);
void cpl0_setup(void) __attribute__((weak));

/* Control device (any CPL). */
uint64_t rt_ctl_read(unsigned offset);
void rt_ctl_write(unsigned offset, uint64_t value);
rt_noreturn void rt_exit(int status);
void rt_report(uint64_t value);
uint64_t rt_clone_id(void);
uint64_t rt_generation(void);
unsigned rt_ncpus(void);

/* Console (any CPL): each call sends one LOG message. */
void rt_log(const char *text, size_t len);
void rt_puts(const char *s);
int rt_printf(const char *fmt, ...) rt_printf_fmt(1, 2);
int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t size, const char *fmt, ...) rt_printf_fmt(3, 4);
rt_noreturn void rt_panic(const char *fmt, ...) rt_printf_fmt(1, 2);
#define RT_ASSERT(c) \
	((c) ? (void)0 : rt_panic("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__))

/* COM1 by port I/O: CPL0 only. */
void rt_uart_putc(char c);
void rt_uart_puts(const char *s);

/* Command line (any CPL): "key=value" words separated by spaces. */
const char *rt_cmdline(void);
/* The value of key= (not NUL-terminated, *len bytes), or NULL when absent. */
const char *rt_arg(const char *key, size_t *len);
/* The value of key= as a decimal or 0x-hex number, or def when absent or malformed. */
uint64_t rt_arg_u64(const char *key, uint64_t def);

/*
 * Run fn(arg) at CPL0 on this CPU and return its value: privileged work (MSRs,
 * control registers, the LAPIC) for code at CPL3. From CPL3 it goes through
 * an int3 of its own (not counted as a #BP) and fn runs with interrupts off;
 * at CPL0 it is a plain call. fn must be RT_CPL0 and short.
 */
uint64_t rt_cpl0_call(uint64_t (*fn)(uint64_t arg), uint64_t arg);

/*
 * Point the IDT gate of vector (< 48; shared by all CPUs) at entry, an
 * assembly routine that saves what it uses and ends in iretq (and, for an
 * interrupt, writes the LAPIC EOI). CPL0 only.
 */
void rt_set_handler(unsigned vector, void (*entry)(void));

/* Whether [addr, addr + len) lies inside one RAM entry of the e820 map (any CPL). */
bool rt_is_ram(uint64_t addr, uint64_t len);

/* LAPIC timer. rt_timer_start is CPL0 only and assumes KVM's 1 GHz APIC bus clock. */
void rt_timer_start(uint32_t period_us);
uint64_t rt_ticks(void);
extern volatile uint64_t rt_tick_count; /* what rt_ticks() reads; for asm loops */

/*
 * SMP. rt_smp_start: CPL0, boot CPU only, once; fn runs at CPL3 on every
 * other CPU with its index (1..ncpus-1) and the CPU halts when it returns.
 * Returns the number of CPUs asked to start.
 */
unsigned rt_smp_start(void (*fn)(unsigned cpu));
/* CPUs that have reached CPL3 so far, the boot CPU included. */
unsigned rt_cpus_online(void);
/* Wait (at CPL3) until rt_cpus_online() >= n or max_cycles TSC cycles pass. */
bool rt_wait_cpus(unsigned n, uint64_t max_cycles);

static inline uint64_t rt_rdtsc(void)
{
	uint32_t lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

static inline void rt_pause(void)
{
	asm volatile("pause" ::: "memory");
}

/*
 * This CPU's APIC id, from the LAPIC's ID register (MMIO, any CPL). Not from
 * CPUID: on nested hosts of the PVM kind, CPUID at CPL3 is not intercepted
 * by KVM and reports the host's own values.
 */
static inline unsigned rt_apic_id(void)
{
	return *(volatile uint32_t *)(uintptr_t)0xfee00020 >> 24; /* LAPIC_BASE + LAPIC_ID */
}

static inline unsigned rt_cpl(void)
{
	uint16_t cs;
	asm volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/*
 * Expected faults. An instruction listed in the exception table (section
 * .rt_extable: pairs of addresses) may fault: the handler counts the vector,
 * records the fault and resumes at the fixup address instead of exiting.
 * The key is the address in RIP when the exception is delivered: the faulting
 * instruction itself, or for a trap (int3) the instruction after it.
 */
#define RT_EXTABLE(key, fixup) \
	".pushsection .rt_extable, \"a\"\n.balign 8\n.quad " key ", " fixup "\n.popsection\n"

struct rt_fault {
	uint64_t vector, error, rip, cr2;
};

/* How many expected faults of this vector the handlers fixed up. */
uint64_t rt_exception_count(unsigned vector);
/* The last fixed-up fault (a copy; written by whichever CPU faulted last). */
struct rt_fault rt_last_fault(void);

/*
 * Fuzzing under vm-fork fuzz (docs/fuzzing.md), at CPL3. rt_fuzz_start marks
 * the point every run starts from and returns the run's input (NULL when not
 * under vm-fork fuzz); it also points the coverage callback of files built
 * with -fsanitize-coverage=trace-pc-guard at the map. A run ends with
 * rt_fuzz_done, rt_fuzz_crash, or an exception the runtime does not expect
 * (it reports it as a crash): the VMM resets the VM to the mark, and
 * rt_fuzz_start returns again with the next input.
 */
bool rt_fuzzing(void);
const uint8_t *rt_fuzz_start(size_t *len);
rt_noreturn void rt_fuzz_done(void);
rt_noreturn void rt_fuzz_crash(uint64_t code);
/*
 * Make the 4 KiB page at addr (below 4 GiB) fault on any access: a guard page
 * after a buffer, so an overflow faults where it happens. CPL0 only; a few
 * 2 MiB pages may hold guards. false when no table is left.
 */
bool rt_guard_page(uint64_t addr);

/* Small freestanding libc. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

#endif
