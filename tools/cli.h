/* The vm-fork command line: one cmd_*.c file per command. */
#ifndef TOOLS_CLI_H
#define TOOLS_CLI_H

#include <stdio.h>

#define VMFORK_VERSION "0.1.0"

/* Exit statuses of vm-fork itself (a guest's own status passes through unchanged). */
#define CLI_EXIT_ERROR 1   /* the VMM could not start or run the VM */
#define CLI_EXIT_USAGE 64  /* bad command line (sysexits' EX_USAGE) */

struct cli_command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
	void (*usage)(FILE *out);
};

int cmd_run(int argc, char **argv);
void cmd_run_usage(FILE *out);

#endif
