/*
 * The configuration of `vm-fork serve` (the serverless pool), a JSON file
 * read with jansson:
 *
 *   { "api": "/run/vm-fork.sock",
 *     "functions": {
 *       "words": {
 *         "kernel": "build/linux/guest-bzImage", "initrd": "fn.cpio.gz",
 *         "cmdline": "console=ttyS0 quiet", "mem": "256M", "cpus": 1,
 *         or "snapshot": "DIR" (instead of kernel, initrd, cmdline, mem, cpus),
 *         "vsock": "/run/words%u.sock", "port": 8080, "ready_port": 9,
 *         "ready_timeout_ms": 120000,
 *         "timeout_ms": 10000, "max_answer": 1048576,
 *         "pool": { "min_warm": 2, "max_warm": 8, "max_concurrent": 32,
 *                   "mem_limit": "128M", "cpu_limit": 0.5 } } } }
 *
 * A function is a template: booted from its kernel until its guest
 * connects to the host's vsock port ready_port (a connection to
 * PATH_<ready_port>, docs/guest-abi.md), or restored from a
 * snapshot, then paused; each invocation is a clone of it. Every key is
 * checked, unknown ones too (a typo is an error, not a default), and an
 * error names the key: "functions.words.port: ...".
 */
#ifndef SERVER_SERVE_CONFIG_H
#define SERVER_SERVE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SERVE_NAME_MAX      64       /* a function's name, with the NUL: [a-z0-9_-]+ */
#define SERVE_FUNCTIONS_MAX 64

struct serve_pool {
	unsigned min_warm, max_warm;     /* clones kept ready ahead of requests */
	unsigned max_concurrent;         /* invocations at once; more are answered 429 */
	uint64_t mem_limit;              /* bytes of a clone's own memory (cgroup memory.max), 0: none */
	double cpu_limit;                /* CPUs a clone may use (cgroup cpu.max), 0: no limit */
};

struct serve_function {
	char name[SERVE_NAME_MAX];
	char *kernel, *initrd, *cmdline; /* a template to boot ... */
	char *snapshot;                  /* ... or one to restore */
	uint64_t mem;
	unsigned cpus;
	char *vsock;                     /* the template's --vsock PATH (%u: clone id) */
	unsigned port;                   /* the guest's function port */
	unsigned ready_port;             /* a booted template is ready when its guest connects here */
	unsigned ready_timeout_ms;       /* ... within this long after it starts */
	unsigned timeout_ms;             /* for an invocation's answer */
	size_t max_answer;               /* bytes */
	struct serve_pool pool;
};

struct serve_config {
	char *api;
	char *tcp;                       /* the functions on loopback TCP too ("127.0.0.1:PORT"), or NULL */
	unsigned nfunctions;
	struct serve_function *functions;
};

/*
 * Parse text (or the file at path) into cfg: 0, or -EINVAL (or the file's
 * errno) with a message in err naming the key at fault. cfg is empty on
 * failure; serve_config_free() it either way.
 */
int serve_config_parse(const char *text, struct serve_config *cfg, char *err, size_t errlen);
int serve_config_load(const char *path, struct serve_config *cfg, char *err, size_t errlen);
void serve_config_free(struct serve_config *cfg);
/* The function named name, or NULL. */
const struct serve_function *serve_config_function(const struct serve_config *cfg,
						   const char *name);

#endif
