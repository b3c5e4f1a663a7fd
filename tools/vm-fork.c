/* vm-fork: the command line. exit() lives here and nowhere in the library. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const struct cli_command commands[] = {
	{ "run", "boot a VM and run it until the guest exits", cmd_run, cmd_run_usage },
	{ "fork", "fork a VM of a running VMM into clones (API)", cmd_fork, cmd_fork_usage },
	{ "info", "list the VMs of a running VMM, or show one (API)", cmd_info, cmd_info_usage },
	{ "pause", "pause a VM of a running VMM (API)", cmd_pause, cmd_pause_usage },
	{ "resume", "resume a paused VM (API)", cmd_resume, cmd_resume_usage },
	{ "stop", "stop a VM of a running VMM (API)", cmd_stop, cmd_stop_usage },
	{ "snapshot", "write a running VM's snapshot to a directory (API)", cmd_snapshot,
	  cmd_snapshot_usage },
	{ "restore", "start VMs from a snapshot directory", cmd_restore, cmd_restore_usage },
	{ "serve", "serve functions, each request in a fresh clone (serverless pool)", cmd_serve,
	  cmd_serve_usage },
	{ "fuzz", "fuzz a guest with afl-fuzz, resetting the VM between inputs", cmd_fuzz,
	  cmd_fuzz_usage },
	/* Hidden (no summary): started by a VMM for a process fork (fork/procfork.h). */
	{ "clone-worker", NULL, cmd_clone_worker, cmd_clone_worker_usage },
	/* Hidden: the pid afl-fuzz kills on a timeout (server/fuzz.h). */
	{ "fuzz-helper", NULL, cmd_fuzz_helper, cmd_fuzz_helper_usage },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const char cli_exit_statuses[] =
	"Exit status: the guest's own status when it writes the control device's EXIT\n"
	"register; 0 when it resets or powers off; 1 when the VMM fails or KVM cannot\n"
	"go on; 2 on a triple fault; 128+N when stopped by signal N (SIGINT, SIGTERM and\n"
	"SIGHUP stop it cleanly); 64 on a bad command line.\n";

/*
 * The long option name[0..len) selects (its full name, or a prefix of no
 * other name), or NULL; *n: how many names it is a prefix of.
 */
static const struct option *long_option(const char *name, size_t len, const struct option *o,
					unsigned *n)
{
	const struct option *found = NULL;

	for (*n = 0; o->name; o++) {
		if (strncmp(o->name, name, len))
			continue;
		if (!o->name[len])
			return o;
		found = o;
		++*n;
	}
	return *n == 1 ? found : NULL;
}

/*
 * What getopt refused: argv[optind - 1] holds it, except an unknown letter
 * inside a cluster such as "-zq" (optind stays on the cluster), so a letter
 * is taken from optopt and a long option only when optopt agrees with it.
 */
static const char *refusal(char **argv, const struct option *longopts, int c, char *name,
			   size_t size)
{
	const char *word = argv[optind - 1];
	size_t len = strcspn(word, "=");
	const struct option *o = NULL;
	unsigned n = 0;

	if (!strncmp(word, "--", 2))
		o = long_option(word + 2, len - 2, longopts, &n);
	if (!strncmp(word, "--", 2) && (c == ':' || !optopt || (o && o->val == optopt))) {
		snprintf(name, size, "%.*s", (int)len, word);
		if (c == ':')
			return "missing argument for option '%s'";
		if (optopt)
			return "option '%s' takes no argument";
		return n > 1 ? "option '%s' is ambiguous: give more of its name" : "unknown option '%s'";
	}
	snprintf(name, size, "-%c", optopt);
	return c == ':' ? "missing argument for option '%s'" : "unknown option '%s'";
}

int cli_bad_option(const char *cmd, char **argv, const struct option *longopts, int c)
{
	char name[64];
	const char *what = refusal(argv, longopts, c, name, sizeof(name));

	fprintf(stderr, "vm-fork %s: ", cmd);
	fprintf(stderr, what, name);
	fprintf(stderr, "\n(see 'vm-fork %s --help')\n", cmd);
	return CLI_EXIT_USAGE;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork [--version] [--help] COMMAND [ARGS]\n"
		"\n"
		"A KVM virtual machine monitor that forks running VMs copy-on-write.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].summary)
			fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'vm-fork COMMAND --help' describes a command.\n\n%s", cli_exit_statuses);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc > 2)
			for (size_t i = 0; i < NCOMMANDS; i++)
				if (!strcmp(argv[2], commands[i].name)) {
					commands[i].usage(stdout);
					return 0;
				}
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("vm-fork %s\n", VMFORK_VERSION);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "vm-fork: '%s' is not a command\n\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
