/*
 * The control device (devices/ctl_abi.h) and the command line. Every
 * register access is one aligned 8-byte MMIO access, which works from CPL3.
 */
#pragma GCC target("general-regs-only")
#include "internal.h"

#define BOOT_PARAMS_CMD_LINE_PTR 0x228 /* u32 in struct boot_params */
#define BOOT_PARAMS_E820_ENTRIES 0x1e8 /* u8 */
#define BOOT_PARAMS_E820_TABLE   0x2d0 /* 20-byte entries: u64 addr, u64 size, u32 type */
#define BOOT_PARAMS_E820_MAX     128
#define E820_ENTRY_SIZE          20
#define E820_RAM                 1

uint64_t rt_ctl_read(unsigned offset)
{
	uint64_t v;

	asm volatile("movq (%1), %0" : "=r"(v) : "r"(VMFORK_CTL_BASE + offset) : "memory");
	return v;
}

void rt_ctl_write(unsigned offset, uint64_t value)
{
	asm volatile("movq %0, (%1)" : : "r"(value), "r"(VMFORK_CTL_BASE + offset) : "memory");
}

void rt_exit(int status)
{
	rt_ctl_write(VMFORK_CTL_EXIT, (uint64_t)(unsigned)status);
	rt_park(); /* the VMM stops us; if it does not, never run on */
}

void rt_report(uint64_t value)
{
	rt_ctl_write(VMFORK_CTL_REPORT, value);
}

uint64_t rt_clone_id(void)
{
	return rt_ctl_read(VMFORK_CTL_CLONE_ID);
}

uint64_t rt_generation(void)
{
	return rt_ctl_read(VMFORK_CTL_GENERATION);
}

unsigned rt_ncpus(void)
{
	return (unsigned)rt_ctl_read(VMFORK_CTL_NCPUS);
}

const char *rt_cmdline(void)
{
	uint32_t ptr;

	if (!rt_boot_params)
		return "";
	ptr = *(volatile uint32_t *)(uintptr_t)(rt_boot_params + BOOT_PARAMS_CMD_LINE_PTR);
	return ptr ? (const char *)(uintptr_t)ptr : "";
}

bool rt_is_ram(uint64_t addr, uint64_t len)
{
	const volatile uint8_t *zp = (const volatile uint8_t *)(uintptr_t)rt_boot_params;
	unsigned n;

	if (!zp || addr + len < addr)
		return false;
	n = zp[BOOT_PARAMS_E820_ENTRIES];
	if (n > BOOT_PARAMS_E820_MAX)
		n = BOOT_PARAMS_E820_MAX;
	for (unsigned i = 0; i < n; i++) {
		const volatile uint8_t *e = zp + BOOT_PARAMS_E820_TABLE + i * E820_ENTRY_SIZE;
		uint64_t start = *(const volatile uint64_t *)e;
		uint64_t size = *(const volatile uint64_t *)(e + 8);
		uint32_t type = *(const volatile uint32_t *)(e + 16);

		if (type == E820_RAM && addr >= start && addr + len <= start + size &&
		    start + size >= start)
			return true;
	}
	return false;
}

static size_t word_len(const char *s)
{
	size_t n = 0;

	while (s[n] && s[n] != ' ')
		n++;
	return n;
}

/* The last "key=value" word wins, as on Linux. */
const char *rt_arg(const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *found = NULL;

	for (const char *s = rt_cmdline(); *s;) {
		size_t n = word_len(s);

		if (n > klen && s[klen] == '=' && !strncmp(s, key, klen)) {
			found = s + klen + 1;
			*len = n - klen - 1;
		}
		s += n;
		while (*s == ' ')
			s++;
	}
	return found;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

uint64_t rt_arg_u64(const char *key, uint64_t def)
{
	size_t len;
	const char *s = rt_arg(key, &len);
	unsigned base = 10;
	uint64_t v = 0;

	if (!s)
		return def;
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (!len)
		return def;
	for (; len; len--, s++) {
		unsigned d = (unsigned)digit_value(*s);

		if (d >= base || v > (UINT64_MAX - d) / base)
			return def;
		v = v * base + d;
	}
	return v;
}
