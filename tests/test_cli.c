/* The vm-fork command line: help, bad input and clear errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
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
