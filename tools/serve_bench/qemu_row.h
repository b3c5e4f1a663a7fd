/* bench-serve's QEMU row: the function restored from a QEMU snapshot per request (qemu_row.c). */
#ifndef TOOLS_SERVE_BENCH_QEMU_ROW_H
#define TOOLS_SERVE_BENCH_QEMU_ROW_H

#include <stddef.h>

#include "tools/serve_bench/load.h"

struct qemu_row_opts {
	const char *qemu, *kernel, *initrd, *cmdline;
	const char *dir;            /* for QMP's socket, QEMU's stderr and the state file */
	unsigned port, ready_port;  /* the function's, and its ready signal's */
	unsigned requests;
};

/*
 * Boot, save, and restore per request, one at a time, into res (status 200
 * and random filled for a good answer). 0, or -errno with the reason in why
 * when QEMU cannot run the function here (res then holds no samples); a
 * request that failed leaves its sample at status 0 and its reason in why.
 */
int qemu_row(const struct qemu_row_opts *o, struct load_result *res, char *why, size_t len);

#endif
