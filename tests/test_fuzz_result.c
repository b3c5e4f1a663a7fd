/* vm-fork fuzz's crash classes: each its own status for afl-fuzz (docs/fuzzing.md). */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "devices/ctl_abi.h"
#include "server/fuzz.h"

static int crash_signal(uint64_t value, const char *what)
{
	struct fuzz_run_result r;

	fuzz_crash_result(&r, value);
	cr_expect_eq(r.outcome, FUZZ_CRASH);
	cr_expect(strstr(r.what, what), "%s for %#lx", r.what, (unsigned long)value);
	return fuzz_wait_status(&r);
}

Test(fuzz_result, each_exception_class_is_a_signal_of_its_own)
{
	uint64_t ex = VMFORK_FUZZ_CRASH_EXCEPTION;

	cr_expect_eq(crash_signal(ex | 14, "#PF"), SIGSEGV);
	cr_expect_eq(crash_signal(ex | 13, "#GP"), SIGSEGV);
	cr_expect_eq(crash_signal(ex | 6, "#UD"), SIGILL);
	cr_expect_eq(crash_signal(ex | 0, "#DE"), SIGFPE);
	cr_expect_eq(crash_signal(ex | 3, "#BP"), SIGTRAP);
	cr_expect_eq(crash_signal(ex | 17, "#AC"), SIGBUS);
	cr_expect_eq(crash_signal(ex | 31, "vector 31"), SIGSEGV);
	/* A program in a Linux guest killed by a signal: that signal. */
	cr_expect_eq(crash_signal(VMFORK_FUZZ_CRASH_SIGNAL | SIGSEGV, "signal 11"), SIGSEGV);
	cr_expect_eq(crash_signal(VMFORK_FUZZ_CRASH_SIGNAL | SIGFPE, "signal 8"), SIGFPE);
	cr_expect_eq(crash_signal(VMFORK_FUZZ_CRASH_SIGNAL | 0, "crash report"), SIGABRT);
	/* The harness's own codes, and a value that only looks like an exception. */
	cr_expect_eq(crash_signal(0x57a7e, "crash report 0x57a7e"), SIGABRT);
	cr_expect_eq(crash_signal(ex | 32, "crash report"), SIGABRT);
	cr_expect_eq(crash_signal(0, "crash report"), SIGABRT);
}

Test(fuzz_result, what_would_end_the_vm_ends_the_run)
{
	struct fuzz_run_result r;

	fuzz_ending_result(&r, VM_STOP_TRIPLE_FAULT, 2);
	cr_expect_eq(fuzz_wait_status(&r), SIGSYS);
	fuzz_ending_result(&r, VM_STOP_RESET, 0);
	cr_expect_eq(fuzz_wait_status(&r), SIGQUIT);
	fuzz_ending_result(&r, VM_STOP_ERROR, 1);
	cr_expect_eq(fuzz_wait_status(&r), SIGUSR2);
	/* An exit is a normal end, with its status: no crash for afl-fuzz. */
	fuzz_ending_result(&r, VM_STOP_GUEST_EXIT, 7);
	cr_expect_eq(r.outcome, FUZZ_EXITED);
	cr_expect(WIFEXITED(fuzz_wait_status(&r)) && WEXITSTATUS(fuzz_wait_status(&r)) == 7);
	fuzz_ending_result(&r, VM_STOP_POWEROFF, 0);
	cr_expect_eq(fuzz_wait_status(&r), 0);
}
