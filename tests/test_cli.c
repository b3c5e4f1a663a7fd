/* The vm-fork command line: help, bad input and clear errors. */
#include <criterion/criterion.h>
#include <elf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The smallest kernel the loader takes: one executable PT_LOAD at paddr holding a hlt. */
struct tiny_kernel {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t code;
} __attribute__((packed));

/* Write it to a new file named from template (mkstemp's XXXXXX). */
static void write_kernel(char *template, uint64_t paddr)
{
	struct tiny_kernel k = {
		.eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			.e_entry = paddr, .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
			.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1 },
		.ph = { .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
			.p_offset = offsetof(struct tiny_kernel, code), .p_vaddr = paddr,
			.p_paddr = paddr, .p_filesz = 1, .p_memsz = 1, .p_align = 1 },
		.code = 0xf4,
	};
	int fd = mkstemp(template);

	memcpy(k.eh.e_ident, ELFMAG, SELFMAG);
	k.eh.e_ident[EI_CLASS] = ELFCLASS64;
	k.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	k.eh.e_ident[EI_VERSION] = EV_CURRENT;
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, &k, sizeof(k)), (ssize_t)sizeof(k));
	close(fd);
}

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
	cr_assert_eq(RUN("restore", "--help"), 0);
	cr_assert(strstr(out, "--api PATH "), "restore --help describes --api: %s", out);
	cr_assert(strstr(out, "--shells N "), "restore --help describes --shells: %s", out);
	cr_assert(strstr(out, "--max-vms N "), "restore --help describes the limits: %s", out);
	cr_assert_eq(RUN("run", "--help"), 0);
	cr_assert(strstr(out, "--guest-fork-rate N "), "run --help describes the limits: %s", out);
}

/* Both helps end with the one text on exit statuses. */
Test(cli, help_lists_exit_statuses)
{
	char *top;

	cr_assert_eq(RUN("--help"), 0);
	cr_assert(strstr(out, "Exit status:"), "vm-fork --help lists exit statuses: %s", out);
	top = strdup(strstr(out, "Exit status:"));
	cr_assert(strstr(top, "64 on a bad command line"), "%s", top);
	cr_assert(strstr(top, "128+N when stopped by signal N"), "%s", top);
	cr_assert_eq(RUN("run", "--help"), 0);
	cr_assert(strstr(out, "Exit status:"), "%s", out);
	cr_assert_str_eq(strstr(out, "Exit status:"), top);
	free(top);
}

/* getopt says nothing of its own: one message, one prefix, and where help is. */
Test(cli, refused_option_one_message)
{
	static const struct {
		const char *args[4];
		const char *says;
	} cases[] = {
		{ { "run", "--kernel", "x", "--bogus" },
		  "vm-fork run: unknown option '--bogus'\n(see 'vm-fork run --help')\n" },
		{ { "run", "--kernel" },
		  "vm-fork run: missing argument for option '--kernel'\n(see 'vm-fork run --help')\n" },
		{ { "run", "--quiet", "-zq" },
		  "vm-fork run: unknown option '-z'\n(see 'vm-fork run --help')\n" },
		{ { "run", "--quiet=1" },
		  "vm-fork run: option '--quiet' takes no argument\n(see 'vm-fork run --help')\n" },
		{ { "run", "--cpu", "2" }, "vm-fork run: option '--cpu' is ambiguous: give more of "
					   "its name\n(see 'vm-fork run --help')\n" },
		{ { "fork", "--bogus" },
		  "vm-fork fork: unknown option '--bogus'\n(see 'vm-fork fork --help')\n" },
		{ { "info", "--api" },
		  "vm-fork info: missing argument for option '--api'\n(see 'vm-fork info --help')\n" },
		{ { "snapshot", "--bogus" },
		  "vm-fork snapshot: unknown option '--bogus'\n(see 'vm-fork snapshot --help')\n" },
		{ { "restore", "/tmp/x", "-z" },
		  "vm-fork restore: unknown option '-z'\n(see 'vm-fork restore --help')\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[6] = { "vm-fork" };

		memcpy(argv + 1, cases[i].args, sizeof(cases[i].args));
		cr_expect_eq(vmfork(argv), 64, "case %zu: exit status", i);
		cr_expect_str_eq(out, cases[i].says, "case %zu", i);
	}
}

Test(cli, bad_command_lines)
{
	static const struct {
		const char *args[6];
		const char *says;
	} cases[] = {
		{ { "frobnicate" }, "not a command" },
		{ { "run" }, "give --kernel FILE, or --firmware FILE" },
		{ { "run", "--firmware", "seabios", "--cmdline", "a" }, "--initrd and --cmdline go with --kernel" },
		{ { "run", "--firmware", "seabios", "--initrd", "a" }, "--initrd and --cmdline go with --kernel" },
		{ { "run", "--kernel", "x", "--mem", "17M" }, "multiple of 2M" },
		{ { "run", "--kernel", "x", "--mem", "8M" }, "between 16M and 1T" },
		{ { "run", "--kernel", "x", "--mem", "2T" }, "between 16M and 1T" },
		{ { "run", "--kernel", "x", "--mem", "lots" }, "not a size" },
		{ { "run", "--kernel", "x", "--cpus", "0" }, "from 1 to 64" },
		{ { "run", "--kernel", "x", "--cpus", "65" }, "from 1 to 64" },
		{ { "run", "--kernel", "x", "--cpus", "two" }, "from 1 to 64" },
		{ { "run", "--kernel", "x", "--bogus" }, "unknown option '--bogus'" },
		{ { "run", "--kernel", "x", "stray" }, "unexpected argument 'stray'" },
		{ { "run", "--kernel" }, "missing argument for option '--kernel'" },
		{ { "run", "--kernel", "x", "--max-vms", "many" }, "a limit must be a whole number" },
		{ { "run", "--kernel", "x", "--guest-fork-rate", "-1" }, "0 for none: '-1'" },
		{ { "run", "--kernel", "x", "--max-clone-procs", "4294967296" }, "whole number" },
		{ { "restore", "/tmp/x", "--max-guest-forks", "1e6" }, "vm-fork restore: a limit" },
		{ { "fuzz" }, "give the guest: --kernel FILE or --snapshot DIR" },
		{ { "fuzz", "--kernel", "x", "--snapshot", "d" }, "give the guest: --kernel" },
		{ { "fuzz", "--snapshot", "d", "--cmdline", "a" }, "the snapshot's own" },
		{ { "fuzz", "--kernel", "/nonexistent" }, "/nonexistent: No such file" },
		{ { "fuzz", "--kernel", "x", "--map-size", "5000" }, "power of 2 from 4096" },
		{ { "fuzz", "--kernel", "x", "--map-size", "1024" }, "power of 2 from 4096" },
		{ { "fuzz", "--kernel", "x", "--timeout", "0" }, "give milliseconds" },
		{ { "fuzz", "--kernel", "x", "--input-max", "17M" }, "16M - 4K" },
		{ { "fuzz", "--kernel", "x", "--replay", "a", "b" }, "give the input once" },
		{ { "fuzz", "--kernel", "x", "a", "b" }, "unexpected argument 'b'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[8] = { "vm-fork" };

		memcpy(argv + 1, cases[i].args, sizeof(cases[i].args));
		cr_expect_eq(vmfork(argv), 64, "case %zu: exit status", i);
		cr_expect(strstr(out, cases[i].says), "case %zu: wanted '%s' in: %s", i, cases[i].says,
			  out);
	}
}

/* A good command line reaches KVM, and a console file is made only once KVM is there. */
Test(cli, no_kvm_device)
{
	char kernel[] = "/tmp/vm-fork-cli-kernel-XXXXXX";
	char log[] = "/tmp/vm-fork-cli-console-XXXXXX", spec[64];

	write_kernel(kernel, 0x100000);
	cr_assert(mkdtemp(log));
	rmdir(log);             /* a fresh name with nothing at it */
	snprintf(spec, sizeof(spec), "file:%s", log);
	cr_expect_eq(RUN("run", "--kernel", kernel, "--console", spec, "--kvm", "/nonexistent/kvm"), 1);
	cr_expect(strstr(out, "/nonexistent/kvm does not exist"), "%s", out);
	cr_expect_neq(access(log, F_OK), 0, "no console file was left behind");
	unlink(log);
	unlink(kernel);
}

/*
 * Each argument is checked before KVM is opened, so its own error comes first
 * (64) with the KVM device missing and with the host's own: this passes on a
 * host with /dev/kvm and on one without.
 */
Test(cli, bad_arguments_before_kvm)
{
	char good[] = "/tmp/vm-fork-cli-kernel-XXXXXX", high[] = "/tmp/vm-fork-cli-high-XXXXXX";
	char garbage[] = "/tmp/vm-fork-cli-garbage-XXXXXX";
	char *long_cmdline = malloc(70000);
	const struct {
		const char *kernel;   /* NULL: a good one */
		const char *args[2];
		const char *says;
	} cases[] = {
		{ "/nonexistent/kernel", { NULL }, "--kernel /nonexistent/kernel: No such file" },
		{ "/", { NULL }, "--kernel /: not a regular file" },
		{ garbage, { NULL }, "kernel: image of 12 bytes is too short for an ELF header" },
		{ high, { "--mem", "64M" }, "does not fit in guest RAM" },
		{ NULL, { "--cmdline", long_cmdline }, "kernel command line is 69999 bytes" },
		{ NULL, { "--initrd", "/nonexistent/initrd" }, "--initrd /nonexistent/initrd: No such" },
		{ NULL, { "--console", "telnet:1" }, "bad spec 'telnet:1'" },
		{ NULL, { "--console", "file:/nonexistent/d/log" }, "file:/nonexistent/d/log: /nonexistent/d:" },
		{ NULL, { "--clone-console", "telnet:%u" }, "bad spec 'telnet:%u'" },
		{ NULL, { "--clone-console", "file:/nonexistent/c-%u" }, "/nonexistent: No such" },
		{ NULL, { "--cpuid-mask", "avx,warp-drive" }, "'warp-drive' is neither a known feature" },
		{ NULL, { "--mem-file", "/nonexistent/d/mem" }, "--mem-file /nonexistent/d/mem: " },
		{ NULL, { "--api", "/nonexistent/d/api.sock" }, "--api /nonexistent/d/api.sock: " },
	};
	FILE *f;

	write_kernel(good, 0x100000);
	write_kernel(high, 1ULL << 30);
	cr_assert(f = fdopen(mkstemp(garbage), "w"));
	fputs("\177ELF\001garbage", f);
	fclose(f);
	memset(long_cmdline, 'x', 69999);
	long_cmdline[69999] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int own_kvm = 0; own_kvm < 2; own_kvm++) {
			char *argv[10] = { "vm-fork", "run", "--kernel",
					   (char *)(cases[i].kernel ? cases[i].kernel : good) };
			int n = 4;

			for (int a = 0; a < 2 && cases[i].args[a]; a++)
				argv[n++] = (char *)cases[i].args[a];
			if (!own_kvm) {
				argv[n++] = "--kvm";
				argv[n++] = "/nonexistent/kvm";
			}
			cr_expect_eq(vmfork(argv), 64, "case %zu (%s): exit status; %s", i,
				     own_kvm ? "/dev/kvm" : "no KVM", out);
			cr_expect(strstr(out, cases[i].says), "case %zu: wanted '%s' in: %s", i,
				  cases[i].says, out);
			cr_expect(!strstr(out, "/dev/kvm") && !strstr(out, "/nonexistent/kvm"),
				  "case %zu: KVM was not opened first: %s", i, out);
		}
	unlink(good);
	unlink(high);
	unlink(garbage);
	free(long_cmdline);
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
	int fd, status;
	pid_t pid;

	SKIP_WITHOUT_KVM();     /* first: a skipped test leaves no file behind */
	fd = mkstemp(console);
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
