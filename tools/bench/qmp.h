/* A minimal QMP client for timing QEMU: one Unix socket, one command at a time. */
#ifndef TOOLS_BENCH_QMP_H
#define TOOLS_BENCH_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct qmp {
	int fd;
	pid_t pid;                 /* the QEMU behind it, to notice it dying */
	size_t len;                /* bytes buffered in buf */
	char buf[16384];
	char migration[32];        /* status of the last MIGRATION event seen */
};

/*
 * Connect to QEMU pid's QMP socket at path (retrying until it listens, QEMU
 * exits, or timeout_ms passes), read the greeting and leave negotiation mode.
 * Returns 0, -ECHILD when QEMU exited, -ETIMEDOUT or -errno.
 */
int qmp_open(struct qmp *q, const char *path, pid_t pid, unsigned timeout_ms);
void qmp_close(struct qmp *q);

/*
 * Run cmd with args (NULL: none; the reference is stolen) and wait for its
 * answer. Returns 0, -EPROTO when QEMU answered an error, or -errno.
 */
int qmp_cmd(struct qmp *q, const char *cmd, json_t *args, unsigned timeout_ms);
/* The same, returning the answer's "return" value (json_decref() it). */
int qmp_query(struct qmp *q, const char *cmd, json_t **ret, unsigned timeout_ms);

/* Turn on the MIGRATION events this client tracks. */
int qmp_migration_events(struct qmp *q);
/* Wait for a MIGRATION event with status completed (0) or failed (-EIO). */
int qmp_wait_migration(struct qmp *q, unsigned timeout_ms);

/* query-status says the VM runs. */
bool qmp_running(struct qmp *q);

/*
 * cmd ("migrate" or "migrate-incoming") with uri, then its MIGRATION event
 * within timeout_ms: 0, -EIO (failed) or -errno.
 */
int qmp_migrate(struct qmp *q, const char *cmd, const char *uri, unsigned timeout_ms);

/* In a forked child: QEMU's argv with stdin and stdout on /dev/null, stderr to err_path. */
void qemu_exec_child(const char *const argv[], const char *err_path) __attribute__((noreturn));

#endif
