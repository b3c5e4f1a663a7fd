/* The load client of make bench-serve: invocations through the daemon's socket, and their figures. */
#ifndef TOOLS_SERVE_BENCH_LOAD_H
#define TOOLS_SERVE_BENCH_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define LOAD_MAX_CONCURRENCY 256

struct load_target {
	char sock[128];             /* the daemon's API socket */
	char function[64];
};

struct load_sample {
	long status;                /* HTTP; 200 for a good answer of a boot run, 0: none */
	uint64_t e2e_ns;
	double fork_ms, deliver_ms, answer_ms; /* Server-Timing; -1: not there */
	unsigned long long clone_id;
	char random[17];            /* the guest's random bytes, in hex */
	char error[96];             /* a failure's body (or curl's error), cut */
};

struct load_result {
	struct load_sample *samples;
	unsigned n, concurrency;
	uint64_t wall_ns;
};

struct load_process {
	long long fds, rss;         /* the daemon's, from /metrics */
};

void load_result_init(struct load_result *r, unsigned n);
void load_result_free(struct load_result *r);
/* n invocations with body "ab", conc at once; every sample filled. */
void load_run(const struct load_target *t, unsigned n, unsigned conc, struct load_result *r);
/*
 * n forks of the function's template through the control API (PUT
 * /v1/vms/T/fork, started), each timed to its first vsock answer, then
 * deleted: the fork-to-first-reply without the pool. vsock_dir: where the
 * configuration put the VMs' sockets (w%u.sock).
 */
void load_raw_forks(const struct load_target *t, unsigned n, const char *vsock_dir,
		    struct load_result *r);
/* GET /v1/functions: the function's figure named key, or -1. */
long long load_pool_figure(const struct load_target *t, const char *key);
/* Until no invocation runs and warm clones are there (polled). */
void load_wait_idle(const struct load_target *t, unsigned warm);
void load_process_figures(const struct load_target *t, struct load_process *p);
/* Every answer 200, from its own clone, with its own random bytes. */
bool load_all_correct(const struct load_result *r);
/* Whether the function's per-clone limits hold; why: their cgroup, or the reason not. */
bool load_limits_enforced(const struct load_target *t, char *why, size_t len);

/*
 * The rows measured, side by side; a QEMU without samples: qemu_why says why.
 * limited: one at a time through a pool with per-clone limits.
 */
struct load_rows {
	struct load_result pool, seq, raw, boot, qemu, limited;
	const char *qemu_why;
	bool limits_enforced;
	char limits_why[256];
};

void load_report(FILE *out, const char *kvm, struct load_rows *rows,
		 const struct load_process *before, const struct load_process *after);

#endif
