/*
 * What this process holds, from /proc/self: how a VMM shows that forks and
 * destroys leave its fds and memory where they were (GET /v1/info, tests,
 * the benchmark).
 */
#ifndef CORE_PROCESS_STATS_H
#define CORE_PROCESS_STATS_H

/* Open file descriptors, not counting the one this call uses. */
unsigned process_open_fds(void);
/* Resident set size in KiB, or -1. */
long process_rss_kib(void);
/* Unique set size (private clean + private dirty) in KiB, or -1. */
long long process_uss_kib(void);

#endif
