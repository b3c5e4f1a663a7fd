/*
 * AFL++'s forkserver protocol, the target's side (server/afl_forkserver.h),
 * against afl-fuzz's side played here over pipes, word by word as AFL++
 * 4.04c reads and writes them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/afl_forkserver.h"

/* afl-fuzz's ends: it writes commands into ctl[1] and reads our words from st[0]. */
static int ctl[2], st[2];

static void pipes(void)
{
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe(ctl), 0);
	cr_assert_eq(pipe(st), 0);
}

static void closes(void)
{
	for (int i = 0; i < 2; i++) {
		close(ctl[i]);
		close(st[i]);
	}
}

static uint32_t afl_reads(void)
{
	uint32_t w = 0xdeadbeef;

	cr_assert_eq(read(st[0], &w, sizeof(w)), (ssize_t)sizeof(w));
	return w;
}

static void afl_writes(uint32_t w)
{
	cr_assert_eq(write(ctl[1], &w, sizeof(w)), (ssize_t)sizeof(w));
}

TestSuite(afl_forkserver, .init = pipes, .fini = closes);

Test(afl_forkserver, hello_says_the_map_size_and_asks_nothing)
{
	struct afl_forkserver fs;

	cr_assert_eq(afl_fs_hello(&fs, ctl[0], st[1], 65536, false), 0);
	/* What Debian's afl-fuzz 4.04c read as "Target map size: 65536". */
	cr_expect_eq(afl_reads(), 0xc001ffff);
	cr_expect(!fs.shm_input);
	cr_assert_eq(afl_fs_hello(&fs, ctl[0], st[1], AFL_FS_MAP_MAX, false), 0);
	cr_expect_eq(afl_reads(), AFL_FS_OPT_ENABLED | AFL_FS_OPT_MAPSIZE | 0x00fffffe);
}

Test(afl_forkserver, a_map_the_hello_cannot_say_is_refused)
{
	struct afl_forkserver fs;

	cr_expect_eq(afl_fs_hello(&fs, ctl[0], st[1], 1, false), -EINVAL);
	cr_expect_eq(afl_fs_hello(&fs, ctl[0], st[1], AFL_FS_MAP_MAX + 1, false), -EINVAL);
}

Test(afl_forkserver, shared_memory_input_needs_the_agreement)
{
	struct afl_forkserver fs;

	afl_writes(0x81000001);
	cr_assert_eq(afl_fs_hello(&fs, ctl[0], st[1], 65536, true), 0);
	cr_expect_eq(afl_reads() & AFL_FS_OPT_SHDMEM_FUZZ, AFL_FS_OPT_SHDMEM_FUZZ);
	cr_expect(fs.shm_input);
	afl_writes(0); /* a run's command where the agreement should be */
	cr_expect_eq(afl_fs_hello(&fs, ctl[0], st[1], 65536, true), -EPROTO);
	cr_expect(!fs.shm_input);
}

Test(afl_forkserver, each_run_its_pid_then_its_status)
{
	struct afl_forkserver fs;
	bool killed = true;

	cr_assert_eq(afl_fs_hello(&fs, ctl[0], st[1], 4096, false), 0);
	afl_reads();
	afl_writes(0);
	cr_assert_eq(afl_fs_next(&fs, &killed), 0);
	cr_expect(!killed);
	cr_assert_eq(afl_fs_started(&fs, 4242), 0);
	cr_expect_eq(afl_reads(), 4242);
	cr_assert_eq(afl_fs_finished(&fs, SIGSEGV), 0);
	cr_expect(WIFSIGNALED(afl_reads()), "afl-fuzz must see a crash");
	afl_writes(1); /* afl-fuzz killed the last run on its timeout */
	cr_assert_eq(afl_fs_next(&fs, &killed), 0);
	cr_expect(killed);
	cr_assert_eq(afl_fs_started(&fs, 4243), 0);
	cr_assert_eq(afl_fs_finished(&fs, 0), 0);
	cr_expect_eq(afl_reads(), 4243);
	cr_expect(!WIFSIGNALED(afl_reads()));
	cr_expect_eq(afl_fs_started(&fs, 0), -EINVAL, "a pid of 0 would make afl-fuzz give up");
}

Test(afl_forkserver, afl_fuzz_gone_or_cut_short)
{
	struct afl_forkserver fs;
	bool killed;
	uint16_t half = 1;

	cr_assert_eq(afl_fs_hello(&fs, ctl[0], st[1], 4096, false), 0);
	cr_assert_eq(write(ctl[1], &half, sizeof(half)), (ssize_t)sizeof(half));
	close(ctl[1]);
	ctl[1] = -1;
	cr_expect_eq(afl_fs_next(&fs, &killed), -EPROTO);
	cr_expect_eq(afl_fs_next(&fs, &killed), -EPIPE);
	close(st[0]);
	st[0] = -1;
	cr_expect_eq(afl_fs_started(&fs, 1), -EPIPE);
}
