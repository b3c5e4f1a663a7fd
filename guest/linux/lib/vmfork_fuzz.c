/* vm-fork fuzz's helper library for Linux programs (vmfork_fuzz.h). No coverage here. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/ctl_abi.h"
#include "vmfork_fuzz.h"

static volatile uint64_t *ctl;
static uint8_t *cov_map;
static uint32_t cov_mask, cov_prev, next_guard;

static uint64_t ctl_read(unsigned off)
{
	return ctl[off / 8];
}

static void ctl_write(unsigned off, uint64_t v)
{
	ctl[off / 8] = v;
}

/* Guards get hashed ids, numbered as each instrumented file's constructor asks. */
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop)
{
	for (uint32_t *g = start; g < stop; g++) {
		uint32_t x = ++next_guard * 0x9e3779b1u + 0x7f4a7c15u;

		x ^= x >> 15;
		x *= 0x2c1b3c6du;
		x ^= x >> 12;
		if (!*g)
			*g = x ? x : 1;
	}
}

void __sanitizer_cov_trace_pc_guard(uint32_t *guard)
{
	uint32_t cur = *guard;

	if (!cov_map || !cur)
		return;
	cov_map[(cur ^ cov_prev) & cov_mask]++;
	cov_prev = cur >> 1;
}

static void *map_phys(int fd, uint64_t gpa, size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)gpa);

	return p == MAP_FAILED ? NULL : p;
}

static void on_crash(int sig)
{
	ctl_write(VMFORK_CTL_FUZZ_CRASH, VMFORK_FUZZ_CRASH_SIGNAL | (uint64_t)sig);
	_exit(128 + sig); /* not under vm-fork fuzz */
}

static int map_all(void)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC | O_CLOEXEC);
	uint64_t input_len, map_gpa;

	if (fd < 0)
		return -1;
	ctl = map_phys(fd, VMFORK_CTL_BASE, VMFORK_CTL_SIZE, PROT_READ | PROT_WRITE);
	if (!ctl || ctl_read(VMFORK_CTL_MAGIC) != VMFORK_CTL_MAGIC_VALUE ||
	    !ctl_read(VMFORK_CTL_FUZZ_INPUT)) {
		close(fd);
		errno = ENODEV;
		return -1;
	}
	map_gpa = ctl_read(VMFORK_CTL_FUZZ_MAP);
	if (map_gpa) {
		cov_map = map_phys(fd, map_gpa, ctl_read(VMFORK_CTL_FUZZ_MAP_SIZE),
				   PROT_READ | PROT_WRITE);
		cov_mask = (uint32_t)ctl_read(VMFORK_CTL_FUZZ_MAP_SIZE) - 1;
	}
	input_len = sizeof(struct vmfork_fuzz_input) + ctl_read(VMFORK_CTL_FUZZ_INPUT_MAX);
	close(fd);
	return map_gpa && !cov_map ? -1 : (int)((input_len + 4095) & ~4095ULL);
}

const uint8_t *vmfork_fuzz_start(size_t *len)
{
	static const int crash_signals[] = { SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGABRT, SIGTRAP };
	const struct vmfork_fuzz_input *in;
	int input_len = map_all(), fd;

	if (input_len < 0)
		return NULL;
	fd = open("/dev/mem", O_RDONLY | O_SYNC | O_CLOEXEC);
	in = fd < 0 ? NULL : map_phys(fd, ctl_read(VMFORK_CTL_FUZZ_INPUT), (size_t)input_len,
				      PROT_READ);
	if (fd >= 0)
		close(fd);
	if (!in)
		return NULL;
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		signal(crash_signals[i], on_crash);
	ctl_write(VMFORK_CTL_SNAPSHOT, 0);
	/* Every run starts here, the whole VM as it was at the mark. */
	if (ctl_read(VMFORK_CTL_SNAPSHOT_RESULT)) {
		errno = EIO;
		return NULL;
	}
	*len = (size_t)in->len;
	return in->data;
}

void vmfork_fuzz_done(void)
{
	ctl_write(VMFORK_CTL_FUZZ_DONE, 0);
	_exit(0);
}

void vmfork_fuzz_crash(uint64_t code)
{
	ctl_write(VMFORK_CTL_FUZZ_CRASH, code);
	_exit(1);
}
