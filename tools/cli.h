/* The vm-fork command line: one cmd_*.c file per command. */
#ifndef TOOLS_CLI_H
#define TOOLS_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "core/version.h"

/* Exit statuses of vm-fork itself (a guest's own status passes through unchanged). */
#define CLI_EXIT_ERROR 1   /* the VMM could not start or run the VM */
#define CLI_EXIT_USAGE 64  /* bad command line (sysexits' EX_USAGE) */

/* What vm-fork's exit status means: one text for 'vm-fork --help' and 'vm-fork run --help'. */
extern const char cli_exit_statuses[];

/*
 * Parsers pass getopt_long() an optstring starting with ':' (after any '+'), so
 * getopt prints nothing and returns ':' for a missing argument, '?' for anything
 * else it refuses. This prints the one message for that, "vm-fork CMD: ..." and
 * where help is, and returns CLI_EXIT_USAGE.
 */
int cli_bad_option(const char *cmd, char **argv, const struct option *longopts, int c);

/*
 * The options that turn on an optional device (core/device.h), one per device
 * type with an option; getopt_long() returns CLI_DEVICE_OPTION for each, and
 * cli_device_option() files the argument under its device.
 */
#define CLI_DEVICE_OPTION 0x1000
#define CLI_DEVICE_OPTIONS \
	{ "rng", optional_argument, NULL, CLI_DEVICE_OPTION }, \
	{ "disk", required_argument, NULL, CLI_DEVICE_OPTION }, \
	{ "vsock", required_argument, NULL, CLI_DEVICE_OPTION }, \
	{ "net", required_argument, NULL, CLI_DEVICE_OPTION }
struct device_config;
/* The device options' help, for run and restore. */
extern const char cli_devices_help[];
/* --name=arg (arg NULL: none given): 0, or CLI_EXIT_USAGE with the reason printed. */
int cli_device_option(const char *cmd, const char *name, const char *arg,
		      struct device_config *cfg);

struct cli_command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
	void (*usage)(FILE *out);
};

int cmd_run(int argc, char **argv);
void cmd_run_usage(FILE *out);
/* Create and boot a VM from cfg and register it in vmm (tools/cmd_run.c). 0 or -errno. */
struct vmm;
struct vm;
struct vm_config;
int cli_boot_vm(struct vmm *vmm, const struct vm_config *cfg, struct vm **out);

/* Clients of a running VMM's control API (tools/cmd_api.c). */
int cmd_fork(int argc, char **argv);
void cmd_fork_usage(FILE *out);
int cmd_info(int argc, char **argv);
void cmd_info_usage(FILE *out);
int cmd_pause(int argc, char **argv);
void cmd_pause_usage(FILE *out);
int cmd_resume(int argc, char **argv);
void cmd_resume_usage(FILE *out);
int cmd_stop(int argc, char **argv);
void cmd_stop_usage(FILE *out);

/* Hidden: one clone of a process fork in its own process (tools/cmd_worker.c). */
int cmd_clone_worker(int argc, char **argv);
void cmd_clone_worker_usage(FILE *out);

int cmd_snapshot(int argc, char **argv);
void cmd_snapshot_usage(FILE *out);
int cmd_restore(int argc, char **argv);
void cmd_restore_usage(FILE *out);
/* Fuzzing with afl-fuzz (tools/cmd_fuzz.c); the helper is hidden. */
int cmd_fuzz(int argc, char **argv);
void cmd_fuzz_usage(FILE *out);
int cmd_fuzz_helper(int argc, char **argv);
void cmd_fuzz_helper_usage(FILE *out);
/* The serverless pool (tools/cmd_serve.c). */
int cmd_serve(int argc, char **argv);
void cmd_serve_usage(FILE *out);

#endif
