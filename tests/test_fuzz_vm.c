/*
 * vm-fork fuzz end to end: replays of each kind of run, every run from the
 * same state, afl-fuzz's side of the forkserver played here word by word,
 * and stock afl-fuzz finding the example target's planted bugs
 * (guest/fuzz_target.c, guest/fuzz/tlv.h).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "server/afl_forkserver.h"
#include "tests/harness.h"
#include "tests/linux_harness.h"

#define MAP_SIZE 65536

/* Inputs: well-formed ones, and one of each planted bug. */
static const struct { const char *name, *bytes; size_t len; } inputs[] = {
	{ "ok-sum", "VMFZA\x03" "abc", 9 },
	{ "ok-write", "VMFZW\x10\x00\x41" "A\x01xE\x78", 12 },
	{ "ok-jump", "VMFZJ\x02" "A\x01x", 9 },
	{ "bad-magic", "VMFX", 4 },
	{ "oob", "VMFZW\x00\x02\x41", 8 },
	{ "hang", "VMFZJ\x00", 6 },
};

static char dir[64];
static char out[16384];

static const char *input_path(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void write_file(const char *path, const char *bytes, size_t len)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(bytes, 1, len, f), len);
	fclose(f);
}

static void setup(void)
{
	SKIP_WITHOUT_KVM();
	strcpy(dir, "/tmp/vmfork-fuzz-XXXXXX");
	cr_assert(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		write_file(input_path(inputs[i].name), inputs[i].bytes, inputs[i].len);
}

static void teardown(void)
{
	char cmd[128];

	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		cr_expect_eq(system(cmd), 0);
	}
}

TestSuite(fuzz_vm, .init = setup, .fini = teardown, .timeout = 150);

static int replay(const char *name, const char *runs)
{
	char *target = strdup(harness_build_path("guest/fuzz_target.elf"));
	char *argv[] = { "vm-fork", "fuzz", "--kernel", target, "--timeout", "500",
			 "--runs", (char *)runs, "--replay", (char *)input_path(name), NULL };
	int rc = harness_run_cli(argv, out, sizeof(out), 60);

	free(target);
	return rc;
}

Test(fuzz_vm, a_replay_says_how_each_run_ended)
{
	cr_expect_eq(replay("ok-sum", "1"), 0, "%s", out);
	cr_expect(strstr(out, ": done"), "%s", out);
	cr_expect_eq(replay("bad-magic", "1"), 0, "%s", out);
	/* The out-of-bounds write runs into the guard page: #PF, SIGSEGV. */
	cr_expect_eq(replay("oob", "1"), 128 + SIGSEGV, "%s", out);
	cr_expect(strstr(out, "crash: #PF page fault"), "%s", out);
	/* The loop never ends: the budget (500 ms) passes, the vCPU is kicked out. */
	cr_expect_eq(replay("hang", "1"), 124, "%s", out);
	cr_expect(strstr(out, "hang: over its time budget"), "%s", out);
}

/* Each way a run ends, three runs each: every one told as its class, the VM reset after it. */
Test(fuzz_vm, each_class_of_end_has_its_status_and_the_vm_goes_on)
{
	struct { char pick; int status; const char *says; } cases[] = {
		{ 'd', 0, ": done" },
		{ 'x', 7, "the guest exited 7" },
		{ 'z', 128 + SIGFPE, "#DE divide error" },
		{ 'u', 128 + SIGILL, "#UD invalid opcode" },
		{ 'b', 128 + SIGTRAP, "#BP breakpoint" },
		{ 'p', 128 + SIGSEGV, "#PF page fault" },
		{ 'c', 128 + SIGABRT, "crash report 0xc0de" },
		{ 't', 128 + SIGSYS, "triple fault" },
		/* Only the one mark, and no reset but the VMM's: both ignored. */
		{ 'm', 0, ": done" },
		{ 'r', 0, ": done" },
	};
	char *target = strdup(harness_build_path("guest/fuzz_classes.elf"));

	/* PVM emulates CPL0 code, and its emulator gives up on the IDT-less int3 instead. */
	if (harness_slow_host()) {
		cases[7].status = 128 + SIGUSR2;
		cases[7].says = "KVM could not go on";
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[16];
		char *argv[] = { "vm-fork", "fuzz", "--kernel", target, "--runs", "3",
				 "--timeout", "2000", "--replay", NULL, NULL };

		snprintf(name, sizeof(name), "class-%c", cases[i].pick);
		write_file(input_path(name), &cases[i].pick, 1);
		argv[9] = (char *)input_path(name);
		cr_expect_eq(harness_run_cli(argv, out, sizeof(out), 60), cases[i].status,
			     "'%c': %s", cases[i].pick, out);
		cr_expect(strstr(out, "3 runs") && strstr(out, cases[i].says), "'%c': %s",
			  cases[i].pick, out);
	}
	free(target);
}

/* fuzz_target counts its runs in its own memory and reports a crash unless the count is 1. */
Test(fuzz_vm, every_run_starts_from_the_mark)
{
	char cmd[512], *vmfork = strdup(harness_build_path("vm-fork"));
	char *target = strdup(harness_build_path("guest/fuzz_target.elf"));

	cr_expect_eq(replay("ok-write", "500"), 0, "%s", out);
	cr_expect(strstr(out, "500 runs"), "%s", out);
	cr_expect(strstr(out, ": done"), "%s", out);
	/* From a pipe, read once: every run gets the same input (the out-of-bounds one). */
	snprintf(cmd, sizeof(cmd), "cat %s | %s fuzz --kernel %s --runs 5 2>&1 | grep -q "
		 "'5 runs.*crash: #PF'", input_path("oob"), vmfork, target);
	cr_expect_eq(system(cmd), 0, "%s", cmd);
	free(vmfork);
	free(target);
}

/* ---- afl-fuzz's side, played here ---- */

struct fake_afl {
	pid_t pid;          /* vm-fork fuzz */
	int ctl, st;        /* our ends: commands in, words out */
	int shm_id;
	uint8_t *map;
};

static void start_target(struct fake_afl *a, const char *input)
{
	char *target = strdup(harness_build_path("guest/fuzz_target.elf"));
	char *exe = strdup(harness_build_path("vm-fork"));
	int ctl[2], st[2];
	char id[16];

	signal(SIGPIPE, SIG_IGN);
	a->shm_id = shmget(IPC_PRIVATE, MAP_SIZE, IPC_CREAT | 0600);
	cr_assert(a->shm_id >= 0);
	a->map = shmat(a->shm_id, NULL, 0);
	cr_assert(a->map != (void *)-1);
	cr_assert_eq(pipe(ctl), 0);
	cr_assert_eq(pipe(st), 0);
	snprintf(id, sizeof(id), "%d", a->shm_id);
	a->pid = fork();
	if (a->pid == 0) {
		dup2(ctl[0], AFL_FS_CTL_FD);
		dup2(st[1], AFL_FS_ST_FD);
		close(ctl[1]); /* afl-fuzz's ends: held here, our EOF would never come */
		close(st[0]);
		setenv("__AFL_SHM_ID", id, 1);
		unsetenv("__AFL_SHM_FUZZ_ID");
		execl(exe, "vm-fork", "fuzz", "--kernel", target, input, (char *)NULL);
		_exit(127);
	}
	close(ctl[0]);
	close(st[1]);
	a->ctl = ctl[1];
	a->st = st[0];
	free(target);
	free(exe);
}

/* A word from vm-fork fuzz within secs (scaled), else the test fails. */
static uint32_t read_word(struct fake_afl *a, unsigned secs)
{
	struct pollfd p = { .fd = a->st, .events = POLLIN };
	uint32_t w;

	cr_assert_eq(poll(&p, 1, (int)harness_wait_s(secs) * 1000), 1, "no word from vm-fork fuzz");
	cr_assert_eq(read(a->st, &w, sizeof(w)), (ssize_t)sizeof(w));
	return w;
}

/* One run as afl-fuzz makes it: a clean map, the command, the pid; then the status. */
static pid_t run_once(struct fake_afl *a, const char *name, uint32_t was_killed)
{
	const char *path = input_path("cur");

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		if (!strcmp(inputs[i].name, name))
			write_file(path, inputs[i].bytes, inputs[i].len);
	memset(a->map, 0, MAP_SIZE);
	cr_assert_eq(write(a->ctl, &was_killed, sizeof(was_killed)), 4);
	return (pid_t)read_word(a, 10);
}

static unsigned count_fds(pid_t pid)
{
	char path[64];
	unsigned n = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	cr_assert(d, "%s", path);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static unsigned map_edges(const struct fake_afl *a)
{
	unsigned n = 0;

	for (unsigned i = 0; i < MAP_SIZE; i++)
		n += a->map[i] != 0;
	return n;
}

Test(fuzz_vm, afl_fuzz_is_told_each_run_and_its_kill_spares_the_vmm)
{
	struct fake_afl a;
	struct pollfd p;
	unsigned ok_edges, bad_edges, fds;
	pid_t helper, pid;
	int status;

	start_target(&a, input_path("cur"));
	/* The hello: our map size, no shared-memory input (none offered here). */
	cr_assert_eq(read_word(&a, 30), AFL_FS_OPT_ENABLED | AFL_FS_OPT_MAPSIZE | (MAP_SIZE - 1) << 1);

	helper = run_once(&a, "ok-write", 0);
	cr_assert(helper > 0 && helper != a.pid, "the pid told is a helper's, not the VMM's");
	cr_expect_eq(read_word(&a, 10), 0, "a well-formed input ends with status 0");
	ok_edges = map_edges(&a);
	cr_expect_gt(ok_edges, 4, "the guest's edges are in afl-fuzz's map (%u)", ok_edges);

	cr_expect_eq(run_once(&a, "bad-magic", 0), helper, "one helper while none is killed");
	cr_expect_eq(read_word(&a, 10), 0);
	bad_edges = map_edges(&a);
	cr_expect(bad_edges > 0 && bad_edges < ok_edges, "edges: bad magic %u, well-formed %u",
		  bad_edges, ok_edges);

	run_once(&a, "oob", 0);
	status = (int)read_word(&a, 10);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);

	/* A hang: afl-fuzz kills the pid after its -t; this run never reports by itself. */
	pid = run_once(&a, "hang", 0);
	p = (struct pollfd){ .fd = a.st, .events = POLLIN };
	cr_expect_eq(poll(&p, 1, 300), 0, "a hung run reported a status");
	cr_assert_eq(kill(pid, SIGKILL), 0);
	read_word(&a, 10);
	cr_expect_eq(waitpid(a.pid, &status, WNOHANG), 0, "the kill ended vm-fork fuzz");

	pid = run_once(&a, "ok-sum", 1);
	cr_expect(pid > 0 && pid != helper && pid != a.pid, "a new helper after the kill");
	cr_expect_eq(read_word(&a, 10), 0, "the run after a hang is a clean one");

	/* More hangs and kills: each new helper's pidfd is closed with it. */
	fds = count_fds(a.pid);
	for (int i = 0; i < 5; i++) {
		pid = run_once(&a, "hang", i > 0);
		cr_assert_eq(kill(pid, SIGKILL), 0);
		read_word(&a, 10);
	}
	helper = run_once(&a, "ok-sum", 1);
	cr_expect_eq(read_word(&a, 10), 0);
	/* A fuzzer that says a run was killed when it was not: the helper serves on. */
	cr_expect_eq(run_once(&a, "ok-sum", 1), helper);
	cr_expect_eq(read_word(&a, 10), 0);
	cr_expect_eq(count_fds(a.pid), fds, "fds of vm-fork fuzz: %u, then %u", fds,
		     count_fds(a.pid));

	close(a.ctl); /* afl-fuzz goes away: vm-fork fuzz ends well */
	p = (struct pollfd){ .fd = a.st, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, (int)harness_wait_s(30) * 1000), 1, "vm-fork fuzz did not end");
	cr_assert_eq(read(a.st, &status, sizeof(status)), 0, "vm-fork fuzz did not end");
	cr_assert_eq(waitpid(a.pid, &status, 0), a.pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_expect_eq(kill(pid, 0), -1, "the helper outlived vm-fork fuzz");
	close(a.st);
	shmdt(a.map);
	shmctl(a.shm_id, IPC_RMID, NULL);
}

/* ---- Stock afl-fuzz ---- */

/* Start afl-fuzz on the seeds into out_dir; extra: vm-fork fuzz's own options (or NULL). */
static pid_t start_afl(const char *out_dir, const char *limit_opt, const char *limit,
		       const char *extra)
{
	char *target = strdup(harness_build_path("guest/fuzz_target.elf"));
	char *exe = strdup(harness_build_path("vm-fork"));
	char seeds[128];
	pid_t pid;

	snprintf(seeds, sizeof(seeds), "%s/seeds", dir);
	mkdir(seeds, 0700);
	for (size_t i = 0; i < 3; i++) { /* the well-formed ones: no bug in them */
		char path[192];

		snprintf(path, sizeof(path), "%s/%s", seeds, inputs[i].name);
		write_file(path, inputs[i].bytes, inputs[i].len);
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		setenv("AFL_NO_UI", "1", 1);
		setenv("AFL_SKIP_CPUFREQ", "1", 1);
		setenv("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1", 1);
		setenv("AFL_NO_AFFINITY", "1", 1);
		setenv("AFL_FORKSRV_INIT_TMOUT", "60000", 1);
		if (extra)
			execlp("afl-fuzz", "afl-fuzz", "-i", seeds, "-o", out_dir, limit_opt, limit,
			       "-t", "300", "--", exe, "fuzz", "--kernel", target, extra, "@@",
			       (char *)NULL);
		else
			execlp("afl-fuzz", "afl-fuzz", "-i", seeds, "-o", out_dir, limit_opt, limit,
			       "-t", "300", "--", exe, "fuzz", "--kernel", target, "@@", (char *)NULL);
		_exit(127);
	}
	free(target);
	free(exe);
	return pid;
}

/* The first file of out_dir/default/sub whose name starts with "id:" (or ""), into path. */
static bool first_finding(const char *out_dir, const char *sub, char *path, size_t size)
{
	char d[160];
	struct dirent *e;
	DIR *dh;
	bool found = false;

	snprintf(d, sizeof(d), "%s/default/%s", out_dir, sub);
	dh = opendir(d);
	while (dh && (e = readdir(dh)))
		if (!strncmp(e->d_name, "id:", 3)) {
			snprintf(path, size, "%s/%s", d, e->d_name);
			found = true;
			break;
		}
	if (dh)
		closedir(dh);
	return found;
}

/* A value of afl-fuzz's fuzzer_stats, or -1. */
static long afl_stat(const char *out_dir, const char *key)
{
	char path[192], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/default/fuzzer_stats", out_dir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ' ')
			v = strtol(strchr(line, ':') + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int wait_afl(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(fuzz_vm, afl_fuzz_finds_the_crash_and_the_hang)
{
	unsigned bound = harness_wait_s(180);
	char out_dir[96], crash[512], hang[512];
	char *target = strdup(harness_build_path("guest/fuzz_target.elf"));
	uint64_t t0 = now_ns();
	bool both = false;
	pid_t afl;
	char secs[16];

	snprintf(out_dir, sizeof(out_dir), "%s/afl", dir);
	snprintf(secs, sizeof(secs), "%u", bound);
	afl = start_afl(out_dir, "-V", secs, NULL);
	/* Until afl-fuzz saved both (it reports them as files), or its -V ends it. */
	while (!both && waitpid(afl, NULL, WNOHANG) == 0) {
		struct pollfd none = { .fd = -1 };

		both = first_finding(out_dir, "crashes", crash, sizeof(crash)) &&
		       first_finding(out_dir, "hangs", hang, sizeof(hang));
		poll(&none, 0, 200); /* afl-fuzz tells nothing sooner: look again */
	}
	harness_note("fuzz_vm: afl-fuzz found %s in %.1f s",
		     both ? "the crash and the hang" : "not both", (now_ns() - t0) / 1e9);
	kill(afl, SIGINT);
	waitpid(afl, NULL, 0);
	cr_assert(both, "afl-fuzz did not find both bugs in %u s", bound);
	cr_expect(strstr(crash, "sig:11"), "a crash of the out-of-bounds write: %s", crash);
	{
		char *argv[] = { "vm-fork", "fuzz", "--kernel", target, "--replay", crash, NULL };
		char *argv_hang[] = { "vm-fork", "fuzz", "--kernel", target, "--timeout", "500",
				      "--replay", hang, NULL };

		cr_expect_eq(harness_run_cli(argv, out, sizeof(out), 60), 128 + SIGSEGV, "%s", out);
		cr_expect_eq(harness_run_cli(argv_hang, out, sizeof(out), 60), 124, "%s", out);
	}
	free(target);
}

/* Without coverage afl-fuzz sees one edge, so it keeps no new input: fewer paths. */
Test(fuzz_vm, without_coverage_afl_fuzz_finds_fewer_paths)
{
	char with[96], without[96];
	long paths_with, paths_without;

	snprintf(with, sizeof(with), "%s/with", dir);
	snprintf(without, sizeof(without), "%s/without", dir);
	cr_assert_eq(wait_afl(start_afl(with, "-E", "3000", NULL)), 0);
	cr_assert_eq(wait_afl(start_afl(without, "-E", "3000", "--no-coverage")), 0);
	paths_with = afl_stat(with, "corpus_count");
	paths_without = afl_stat(without, "corpus_count");
	harness_note("fuzz_vm: 3000 execs: %ld paths with coverage, %ld without", paths_with,
		     paths_without);
	/* Hit counts alone (edges all in one byte) give a path or two: more than that is edges. */
	cr_expect(paths_without > 0 && paths_with >= paths_without + 4,
		  "paths: %ld with, %ld without", paths_with, paths_without);
}

/* ---- A program in a Linux guest, through the helper library (guest/linux/lib) ---- */

static int replay_linux(const char *kernel, const char *name, const char *runs)
{
	char *initrd = strdup(harness_build_path("examples/fuzz-linux.cpio.gz"));
	char *argv[] = { "vm-fork", "fuzz", "--kernel", (char *)kernel, "--initrd", initrd,
			 "--mem", "256M", "--cmdline", "console=ttyS0 quiet", "--timeout", "2000",
			 "--runs", (char *)runs, "--replay", (char *)input_path(name), NULL };
	int rc = harness_run_cli(argv, out, sizeof(out), 120);

	free(initrd);
	return rc;
}

Test(fuzz_vm, a_linux_program_is_fuzzed_with_its_kernel_reset_each_run)
{
	char *kernel = linux_small_kernel();

	cr_expect_eq(replay_linux(kernel, "ok-write", "50"), 0, "%s", out);
	cr_expect(strstr(out, "50 runs") && strstr(out, ": done"), "%s", out);
	/* The write runs into a PROT_NONE page: SIGSEGV in the guest, told as such. */
	cr_expect_eq(replay_linux(kernel, "oob", "1"), 128 + SIGSEGV, "%s", out);
	cr_expect(strstr(out, "signal 11 in the guest"), "%s", out);
	cr_expect_eq(replay_linux(kernel, "hang", "1"), 124, "%s", out);
	free(kernel);
}

/* ---- From a snapshot: instances share its memory file ---- */

/*
 * A guest booted with fuzz=wait waits for vm-fork fuzz; its snapshot is what
 * every instance restores, each run still from the guest's own mark.
 */
Test(fuzz_vm, fuzzing_starts_from_a_snapshot_of_a_waiting_guest)
{
	char sock[96], log[96], spec[112], snap[96];
	char *target = strdup(harness_build_path("guest/fuzz_target.elf"));
	char *vmfork = strdup(harness_build_path("vm-fork"));
	unsigned bound = harness_wait_s(30) * 100;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	snprintf(log, sizeof(log), "%s/console.log", dir);
	snprintf(spec, sizeof(spec), "file:%s", log);
	snprintf(snap, sizeof(snap), "%s/snap", dir);
	pid = fork();
	if (pid == 0) {
		execl(vmfork, "vm-fork", "run", "--kernel", target, "--cmdline", "fuzz=wait",
		      "--console", spec, "--api", sock, (char *)NULL);
		_exit(127);
	}
	/* Until the guest says it waits (its console is the report). */
	for (unsigned i = 0; i < bound && (access(sock, F_OK) || !harness_file_has(log, "waiting")); i++) {
		struct pollfd none = { .fd = -1 };

		poll(&none, 0, 10);
	}
	cr_assert(harness_file_has(log, "rt: waiting for vm-fork fuzz"), "the guest never waited");
	cr_assert_eq(harness_run_cli((char *const[]){ "vm-fork", "snapshot", "--api", sock, snap,
						      NULL }, out, sizeof(out), 60), 0, "%s", out);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	{
		char *oob_in = strdup(input_path("oob")), *ok_in = strdup(input_path("ok-write"));
		char *oob[] = { "vm-fork", "fuzz", "--snapshot", snap, "--runs", "3", "--replay",
				oob_in, NULL };
		char *ok[] = { "vm-fork", "fuzz", "--snapshot", snap, "--runs", "200", "--replay",
			       ok_in, NULL };

		cr_expect_eq(harness_run_cli(oob, out, sizeof(out), 60), 128 + SIGSEGV, "%s", out);
		cr_expect(strstr(out, "3 runs") && strstr(out, "#PF page fault"), "%s", out);
		cr_expect_eq(harness_run_cli(ok, out, sizeof(out), 60), 0, "%s", out);
		cr_expect(strstr(out, "200 runs") && strstr(out, ": done"), "%s", out);
		free(oob_in);
		free(ok_in);
	}
	free(target);
	free(vmfork);
}
