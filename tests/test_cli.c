/* The vm-fork command line: help, bad input and clear errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

static char out[64 * 1024];

static int vmfork(char *const argv[])
{
	return harness_run_cli(argv, out, sizeof(out), 30);
}

#define RUN(...) vmfork((char *const[]){ "vm-fork", __VA_ARGS__, NULL })

Test(cli, help_lists_commands)
{
	cr_assert_eq(RUN("--help"), 0);
	cr_assert(strstr(out, "run "), "%s", out);
	cr_assert_eq(RUN("run", "--help"), 0);
	cr_assert(strstr(out, "--kernel FILE"), "%s", out);
	cr_assert(strstr(out, "--cpuid-mask"), "%s", out);
	cr_assert_eq(RUN("help", "run"), 0);
	cr_assert(strstr(out, "--kernel FILE"), "%s", out);
	cr_assert_eq(RUN("--version"), 0);
	cr_assert(strstr(out, "vm-fork "), "%s", out);
}

Test(cli, bad_command_lines)
{
	static const struct {
		const char *args[6];
		const char *says;
	} cases[] = {
		{ { "frobnicate" }, "not a command" },
		{ { "run" }, "--kernel FILE is required" },
		{ { "run", "--kernel", "x", "--mem", "17M" }, "multiple of 2M" },
		{ { "run", "--kernel", "x", "--mem", "8M" }, "between 16M and 1T" },
		{ { "run", "--kernel", "x", "--mem", "2T" }, "between 16M and 1T" },
		{ { "run", "--kernel", "x", "--mem", "lots" }, "not a size" },
		{ { "run", "--kernel", "x", "--cpus", "0" }, "from 1 to 64" },
		{ { "run", "--kernel", "x", "--cpus", "65" }, "from 1 to 64" },
		{ { "run", "--kernel", "x", "--cpus", "two" }, "from 1 to 64" },
		{ { "run", "--kernel", "x", "--bogus" }, "unknown option" },
		{ { "run", "--kernel", "x", "stray" }, "unexpected argument 'stray'" },
		{ { "run", "--kernel" }, "missing argument" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[8] = { "vm-fork" };

		memcpy(argv + 1, cases[i].args, sizeof(cases[i].args));
		cr_expect_eq(vmfork(argv), 64, "case %zu: exit status", i);
		cr_expect(strstr(out, cases[i].says), "case %zu: wanted '%s' in: %s", i, cases[i].says,
			  out);
	}
}

Test(cli, no_kvm_device)
{
	cr_assert_eq(RUN("run", "--kernel", "x", "--kvm", "/nonexistent/kvm"), 1);
	cr_assert(strstr(out, "/nonexistent/kvm does not exist"), "%s", out);
}

Test(cli, kernel_file_problems)
{
	char path[] = "/tmp/vm-fork-bad-kernel-XXXXXX";
	int fd = mkstemp(path);

	SKIP_WITHOUT_KVM();
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "\177ELF garbage", 12), 12);
	close(fd);
	cr_assert_eq(RUN("run", "--kernel", "/nonexistent/kernel", "--console", "none"), 1);
	cr_assert(strstr(out, "/nonexistent/kernel"), "the error names the file: %s", out);
	cr_assert_eq(RUN("run", "--kernel", path, "--console", "none"), 1);
	cr_assert(strstr(out, "error"), "%s", out);
	unlink(path);
}

Test(cli, bad_console_and_cpuid_mask)
{
	SKIP_WITHOUT_KVM();
	cr_assert_eq(RUN("run", "--kernel", "guest/hello.elf", "--console", "telnet:1"), 1);
	cr_assert(strstr(out, "telnet:1"), "the error names the spec: %s", out);
	cr_assert_eq(RUN("run", "--kernel", "guest/hello.elf", "--cpuid-mask", "warp-drive"), 1);
	cr_assert(strstr(out, "warp-drive"), "%s", out);
}

Test(cli, exit_status_and_console)
{
	SKIP_WITHOUT_KVM();
	char *exit_status = strdup(harness_build_path("guest/exit_status.elf"));
	char *hello = strdup(harness_build_path("guest/hello.elf"));

	cr_assert_eq(RUN("run", "--kernel", exit_status, "--cmdline", "status=7", "--mem", "32M"), 7,
		     "%s", out);
	cr_assert_eq(RUN("run", "--kernel", hello, "--mem", "64M"), 0);
	cr_assert(strstr(out, "hello from vm-fork guest at CPL3"), "log lines reach stdout: %s", out);
	free(exit_status);
	free(hello);
}

Test(cli, sigterm_stops_cleanly, .timeout = 30)
{
	char console[] = "/tmp/vm-fork-sig-XXXXXX";
	int fd = mkstemp(console), status;
	pid_t pid;

	SKIP_WITHOUT_KVM();
	cr_assert(fd >= 0);
	close(fd);
	pid = fork();
	if (pid == 0) {
		char spec[64];

		snprintf(spec, sizeof(spec), "file:%s", console);
		char *kernel = strdup(harness_build_path("guest/wait_fork.elf"));

		execl(harness_build_path("vm-fork"), "vm-fork", "run", "--kernel", kernel, "--mem", "32M", "--console", spec,
		      (char *)NULL);
		_exit(127);
	}
	/* wait until the guest runs, then ask it to stop */
	for (int i = 0; i < 500; i++) {
		char buf[256] = { 0 };
		FILE *f = fopen(console, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		if (n && strstr(buf, "wait_fork: ready"))
			break;
		usleep(20000);
	}
	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	unlink(console);
	cr_assert(WIFEXITED(status), "vm-fork exits, it is not killed");
	cr_assert_eq(WEXITSTATUS(status), 128 + SIGTERM, "exit status %d", WEXITSTATUS(status));
}
