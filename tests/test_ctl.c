/* The control device on a real memfd-backed guest RAM, with a recording host. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/memory.h"
#include "devices/ctl.h"
#include "devices/ctl_abi.h"

#define CTL_RAM (16ULL << 20)

struct ctl_fake {
	int exits, exit_status;
	int logs;
	char log[VMFORK_LOG_MAX + 16];
	size_t log_len;
	int reports;
	uint64_t report;
};

static struct ctl_fake fake;
static struct guest_mem mem;
static struct ctl_dev ctl;

static void fake_exit(void *opaque, int status)
{
	struct ctl_fake *f = opaque;

	f->exits++;
	f->exit_status = status;
}

static void fake_log(void *opaque, const char *text, size_t len)
{
	struct ctl_fake *f = opaque;

	cr_assert_leq(len, VMFORK_LOG_MAX);
	cr_assert_eq(text[len], '\0');
	memcpy(f->log, text, len);
	f->log_len = len;
	f->logs++;
}

static void fake_report(void *opaque, uint64_t value)
{
	struct ctl_fake *f = opaque;

	f->reports++;
	f->report = value;
}

static void ctl_setup(void)
{
	struct ctl_host host = {
		.exit = fake_exit, .log = fake_log, .report = fake_report, .opaque = &fake,
	};

	memset(&fake, 0, sizeof(fake));
	cr_assert_eq(guest_mem_create(&mem, CTL_RAM, NULL), 0);
	ctl_init(&ctl, &mem, &host, 3);
}

static void ctl_teardown(void)
{
	ctl_destroy(&ctl);
	guest_mem_destroy(&mem);
}

static uint64_t ctl_rd(uint64_t off)
{
	uint64_t v = 0xdeadbeef;

	ctl_bus_ops.io(&ctl, off, (uint8_t *)&v, 8, false);
	return v;
}

static void ctl_wr(uint64_t off, uint64_t v)
{
	ctl_bus_ops.io(&ctl, off, (uint8_t *)&v, 8, true);
}

/* Put a log message header and text at gpa (the text only as far as RAM goes). */
static void put_msg(uint64_t gpa, unsigned len, const char *text)
{
	struct vmfork_log_msg hdr = { .len = len };

	cr_assert_eq(guest_write(&mem, gpa, &hdr, sizeof(hdr)), 0);
	if (text)
		cr_assert_eq(guest_write(&mem, gpa + sizeof(hdr), text, strlen(text)), 0);
}

TestSuite(ctl, .init = ctl_setup, .fini = ctl_teardown);

Test(ctl, identity_registers)
{
	cr_assert_eq(ctl_rd(VMFORK_CTL_MAGIC), VMFORK_CTL_MAGIC_VALUE);
	cr_assert_eq(ctl_rd(VMFORK_CTL_VERSION), VMFORK_CTL_VERSION_VALUE);
	cr_assert_eq(ctl_rd(VMFORK_CTL_NCPUS), 3);
	cr_assert_eq(ctl_rd(VMFORK_CTL_CLONE_ID), 0);
	cr_assert_eq(ctl_rd(VMFORK_CTL_GENERATION), 0);
	cr_assert_eq(ctl_rd(VMFORK_CTL_CHILD_INDEX), 0);
	ctl.clone_id = 7;
	ctl.generation = 2;
	cr_assert_eq(ctl_rd(VMFORK_CTL_CLONE_ID), 7);
	cr_assert_eq(ctl_rd(VMFORK_CTL_GENERATION), 2);
	cr_assert_eq(ctl.bad_accesses, 0);
}

Test(ctl, exit_and_report)
{
	ctl_wr(VMFORK_CTL_EXIT, 0x1234);
	cr_assert_eq(fake.exits, 1);
	cr_assert_eq(fake.exit_status, 0x34);
	ctl_wr(VMFORK_CTL_REPORT, 0xfeedface12345678ULL);
	cr_assert_eq(fake.reports, 1);
	cr_assert_eq(fake.report, 0xfeedface12345678ULL);
	cr_assert_eq(ctl.bad_accesses, 0);
}

Test(ctl, fork_not_implemented)
{
	ctl_wr(VMFORK_CTL_FORK, 2);
	cr_assert_eq(ctl_rd(VMFORK_CTL_FORK_RESULT), (uint64_t)-ENOSYS);
}

Test(ctl, log_message)
{
	put_msg(0x1000, 5, "hello world");
	ctl_wr(VMFORK_CTL_LOG, 0x1000);
	cr_assert_eq(fake.logs, 1);
	cr_assert_eq(fake.log_len, 5);
	cr_assert_eq(memcmp(fake.log, "hello", 5), 0);
	/* A message that ends exactly at the end of RAM is fine. */
	put_msg(CTL_RAM - 10, 2, "ok");
	ctl_wr(VMFORK_CTL_LOG, CTL_RAM - 10);
	cr_assert_eq(fake.logs, 2);
	cr_assert_eq(memcmp(fake.log, "ok", 2), 0);
	cr_assert_eq(ctl.bad_accesses, 0);
}

Test(ctl, log_long_message_is_cut)
{
	put_msg(0x2000, 0xffffffffu, "abc");
	ctl_wr(VMFORK_CTL_LOG, 0x2000);
	cr_assert_eq(fake.logs, 1);
	cr_assert_eq(fake.log_len, VMFORK_LOG_MAX);
	cr_assert_eq(memcmp(fake.log, "abc", 3), 0);
}

Test(ctl, log_bad_gpa_ignored)
{
	ctl_wr(VMFORK_CTL_LOG, CTL_RAM);                /* just past RAM */
	ctl_wr(VMFORK_CTL_LOG, VMFORK_CTL_BASE);        /* the MMIO hole */
	ctl_wr(VMFORK_CTL_LOG, UINT64_MAX - 3);         /* would wrap */
	ctl_wr(VMFORK_CTL_LOG, CTL_RAM - 4);            /* header straddles the end */
	put_msg(CTL_RAM - 16, 100, NULL);               /* text runs past the end */
	ctl_wr(VMFORK_CTL_LOG, CTL_RAM - 16);
	put_msg(CTL_RAM - 100, 0xffffffffu, NULL);      /* huge len, cut, still too long */
	ctl_wr(VMFORK_CTL_LOG, CTL_RAM - 100);
	cr_assert_eq(fake.logs, 0);
	cr_assert_eq(ctl.bad_accesses, 6);
}

Test(ctl, bad_accesses_counted)
{
	uint8_t b[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	ctl_bus_ops.io(&ctl, VMFORK_CTL_MAGIC, b, 4, false);      /* wrong size */
	cr_assert_eq(b[0] | b[1] | b[2] | b[3], 0);
	cr_assert_eq(b[4], 0xff, "a 4-byte read touches 4 bytes");
	ctl_bus_ops.io(&ctl, VMFORK_CTL_MAGIC + 4, b, 8, false);  /* misaligned */
	cr_assert_eq(b[0] | b[7], 0);
	b[0] = 1;
	ctl_bus_ops.io(&ctl, VMFORK_CTL_EXIT, b, 1, true);        /* byte write to EXIT */
	cr_assert_eq(fake.exits, 0);
	cr_assert_eq(ctl_rd(0x800), 0);                           /* unknown offset */
	ctl_wr(0x800, 1);
	ctl_wr(VMFORK_CTL_MAGIC, 1);                              /* read-only */
	cr_assert_eq(ctl_rd(VMFORK_CTL_MAGIC), VMFORK_CTL_MAGIC_VALUE);
	cr_assert_eq(ctl_rd(VMFORK_CTL_EXIT), 0);                 /* write-only */
	cr_assert_eq(ctl.bad_accesses, 7);
	cr_assert_eq(fake.exits + fake.logs + fake.reports, 0);
}

static uint64_t crash_value;
static int dones;

static void fake_done(void *opaque)
{
	dones++;
}

static void fake_crash(void *opaque, uint64_t value)
{
	crash_value = value;
}

/* Outside vm-fork fuzz: nothing to fuzz, and a guest's DONE or CRASH is only counted. */
Test(ctl, fuzz_registers_read_zero_and_ends_are_ignored_outside_fuzzing)
{
	uint64_t bad = ctl.bad_accesses;

	cr_expect_eq(ctl_rd(VMFORK_CTL_FUZZ_INPUT), 0);
	cr_expect_eq(ctl_rd(VMFORK_CTL_FUZZ_MAP), 0);
	ctl_wr(VMFORK_CTL_FUZZ_DONE, 1);
	ctl_wr(VMFORK_CTL_FUZZ_CRASH, 2);
	cr_expect_eq(ctl.bad_accesses, bad + 2);
}

Test(ctl, fuzz_registers_say_what_the_host_set_and_ends_reach_it)
{
	struct ctl_fuzz_info info = { .input_gpa = 0xc1000000, .input_max = 4096,
				      .map_gpa = 0xc0000000, .map_size = 65536 };

	ctl.host.fuzz_done = fake_done;
	ctl.host.fuzz_crash = fake_crash;
	ctl_set_fuzz(&ctl, &info);
	cr_expect_eq(ctl_rd(VMFORK_CTL_FUZZ_INPUT), 0xc1000000);
	cr_expect_eq(ctl_rd(VMFORK_CTL_FUZZ_INPUT_MAX), 4096);
	cr_expect_eq(ctl_rd(VMFORK_CTL_FUZZ_MAP), 0xc0000000);
	cr_expect_eq(ctl_rd(VMFORK_CTL_FUZZ_MAP_SIZE), 65536);
	ctl_wr(VMFORK_CTL_FUZZ_DONE, 0);
	ctl_wr(VMFORK_CTL_FUZZ_CRASH, VMFORK_FUZZ_CRASH_EXCEPTION | 14);
	cr_expect_eq(dones, 1);
	cr_expect_eq(crash_value, VMFORK_FUZZ_CRASH_EXCEPTION | 14);
}
