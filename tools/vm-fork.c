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
	/* Hidden (no summary): started by a VMM for a process fork (snapshot/procfork.h). */
	{ "clone-worker", NULL, cmd_clone_worker, cmd_clone_worker_usage },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

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
	fprintf(out, "\n'vm-fork COMMAND --help' describes a command.\n");
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
