/*
 * make bench-serve: `vm-fork serve` under load, beside the two things it
 * is measured against, in one run (docs/serve.md, docs/performance.md):
 *
 *   pool             N invocations of the example function, C at once,
 *                    through the daemon's Unix socket; end to end, and split
 *                    into fork, deliver and answer (the Server-Timing header)
 *   pool, 1 at once  the same one at a time: the latency without queueing
 *   limits           the same one at a time through a second function with
 *                    per-clone limits: a process and a cgroup v2 per clone
 *   raw fork+reply   the control API's fork of the same paused template and
 *                    the clone's first vsock answer, without the pool
 *   boot per request a new `vm-fork run` of the function per request, until
 *                    its guest is ready and has answered
 *   QEMU per request the function saved once by QEMU and restored from that
 *                    file per request (qemu_row.c), when QEMU runs here
 *
 * Every answer is checked: status 200, its own clone id, its own random
 * bytes.
 *
 * Usage: vm-fork-serve-bench --vmfork BIN --kernel K --initrd I
 *          [--requests N] [--concurrency C] [--boot-requests M] [--quick]
 *          [--qemu PATH | --no-qemu]
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "server/vsock_call.h"
#include "tools/serve_bench/load.h"
#include "tools/serve_bench/qemu_row.h"

#define CMDLINE "console=ttyS0 reboot=k panic=-1 i8042.noaux initcall_blacklist=cmos_init quiet"
#define MIN_WARM 4
#define LIMITED_WARM 2 /* warm clone processes of the function with limits */

extern char **environ;

struct opts {
	const char *vmfork, *kernel, *initrd, *qemu;
	unsigned requests, concurrency, boot_requests, sequential;
};

static struct load_target target, limited;
static char dir[64];

static int write_config(const struct opts *o)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/serve.json", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "{ \"api\": \"%s\", \"functions\": { \"words\": {\n"
		"  \"kernel\": \"%s\", \"initrd\": \"%s\", \"mem\": \"256M\", \"cmdline\": \"%s\",\n"
		"  \"vsock\": \"%s/w%%u.sock\", \"port\": 8080, \"ready_port\": 9, \"timeout_ms\": 60000,\n"
		"  \"pool\": { \"min_warm\": %u, \"max_warm\": %u, \"max_concurrent\": %u } },\n",
		target.sock, o->kernel, o->initrd, CMDLINE, dir, MIN_WARM, o->concurrency,
		o->concurrency);
	fprintf(f, "  \"limited\": {\n"
		"  \"kernel\": \"%s\", \"initrd\": \"%s\", \"mem\": \"256M\", \"cmdline\": \"%s\",\n"
		"  \"vsock\": \"%s/l%%u.sock\", \"port\": 8080, \"ready_port\": 9, \"timeout_ms\": 60000,\n"
		"  \"pool\": { \"min_warm\": 1, \"max_warm\": %u, \"max_concurrent\": %u,\n"
		"    \"mem_limit\": \"128M\", \"cpu_limit\": 1 } } } }\n",
		o->kernel, o->initrd, CMDLINE, dir, LIMITED_WARM, LIMITED_WARM);
	return fclose(f) ? -errno : 0;
}

static pid_t spawn(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	ret = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return ret ? -ret : pid;
}

/* The daemon, until its pool is idle with its warm clones: what it reports, polled. */
static pid_t start_daemon(const struct opts *o)
{
	char cfg[128], log[128];
	char *argv[] = { (char *)o->vmfork, "serve", "--config", cfg, "--console-dir", dir, NULL };
	pid_t pid;

	snprintf(cfg, sizeof(cfg), "%s/serve.json", dir);
	snprintf(log, sizeof(log), "%s/serve.log", dir);
	pid = spawn(argv, log);
	if (pid < 0)
		return pid;
	for (unsigned i = 0; i < 6000; i++) {
		if (waitpid(pid, NULL, WNOHANG) != 0) {
			fprintf(stderr, "serve-bench: the daemon died; see %s\n", log);
			return -ECHILD;
		}
		if (load_pool_figure(&target, "warm") >= MIN_WARM &&
		    load_pool_figure(&target, "inflight") == 0)
			return pid;
		usleep(50000);
	}
	kill(pid, SIGTERM);
	return -ETIMEDOUT;
}

/* ---- a VM booted per request ---- */

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path) + 1;
	int fd;

	if (len > sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, len);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Boot the function, wait for its ready, invoke it once, stop it: 0 with the time taken. */
static int boot_once(const struct opts *o, unsigned i, uint64_t *ns)
{
	char vsock[128], sock[128], ready[160], log[128];
	char *argv[] = { (char *)o->vmfork, "run", "--kernel", (char *)o->kernel, "--initrd",
			 (char *)o->initrd, "--cmdline", CMDLINE, "--mem", "256M", "--vsock", vsock,
			 "--rng", "--console", "none", "-q", NULL };
	struct pollfd p;
	uint64_t start = now_ns();
	char *answer = NULL;
	size_t len;
	int ret = -ETIMEDOUT, fd;
	pid_t pid;

	snprintf(vsock, sizeof(vsock), "%s/b%u_%%u.sock", dir, i);
	snprintf(sock, sizeof(sock), "%s/b%u_0.sock", dir, i);
	snprintf(ready, sizeof(ready), "%s_9", sock);
	snprintf(log, sizeof(log), "%s/boot.log", dir);
	p.fd = listen_at(ready);
	p.events = POLLIN;
	pid = p.fd < 0 ? -1 : spawn(argv, log);
	if (pid > 0 && poll(&p, 1, 300000) == 1 && (fd = accept(p.fd, NULL, NULL)) >= 0) {
		struct vsock_call c = { .path = sock, .port = 8080, .body = "ab", .len = 2,
					.timeout_ms = 60000, .max_answer = 4096 };

		close(fd);
		ret = vsock_call(&c, &answer, &len);
		free(answer);
	}
	*ns = now_ns() - start;
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	if (p.fd >= 0)
		close(p.fd);
	unlink(ready);
	return ret;
}

struct boot_worker {
	pthread_t t;
	const struct opts *o;
	atomic_uint *next;
	struct load_result *res;
};

static void *boot_thread(void *arg)
{
	struct boot_worker *w = arg;
	unsigned i;

	while ((i = atomic_fetch_add(w->next, 1)) < w->o->boot_requests) {
		struct load_sample *s = &w->res->samples[i];

		s->status = boot_once(w->o, i, &s->e2e_ns) == 0 ? 200 : 0;
	}
	return NULL;
}

static void boot_per_request(const struct opts *o, struct load_result *res)
{
	unsigned conc = o->concurrency < 4 ? o->concurrency : 4;

	if (conc > o->boot_requests)
		conc = o->boot_requests;
	struct boot_worker w[4];
	atomic_uint next = 0;
	uint64_t start = now_ns();

	load_result_init(res, o->boot_requests);
	for (unsigned i = 0; i < conc; i++) {
		w[i] = (struct boot_worker){ .o = o, .next = &next, .res = res };
		pthread_create(&w[i].t, NULL, boot_thread, &w[i]);
	}
	for (unsigned i = 0; i < conc; i++)
		pthread_join(w[i].t, NULL);
	res->wall_ns = now_ns() - start;
	res->concurrency = conc;
}

/* ---- the report ---- */

static const char *kvm_kind(void)
{
	const char *k = getenv("VMFORK_KVM_KIND");

	return k && *k ? k : "/dev/kvm of this host";
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "vmfork", required_argument, NULL, 'v' }, { "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' }, { "requests", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "boot-requests", required_argument, NULL, 'b' }, { "quick", no_argument, NULL, 'q' },
		{ "qemu", required_argument, NULL, 'Q' }, { "no-qemu", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .requests = 1000, .concurrency = 32, .boot_requests = 8, .sequential = 50,
			    .qemu = "qemu-system-x86_64" };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'v': o->vmfork = optarg; break;
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'n': o->requests = (unsigned)atoi(optarg); break;
		case 'c': o->concurrency = (unsigned)atoi(optarg); break;
		case 'b': o->boot_requests = (unsigned)atoi(optarg); break;
		case 'q': o->requests = 128; o->boot_requests = 4; o->sequential = 16; break;
		case 'Q': o->qemu = optarg; break;
		case 'N': o->qemu = NULL; break;
		default: return -1;
		}
	}
	if (!o->vmfork || !o->kernel || !o->initrd || !o->requests || !o->concurrency ||
	    o->concurrency > LOAD_MAX_CONCURRENCY || !o->boot_requests) {
		fprintf(stderr, "usage: vm-fork-serve-bench --vmfork BIN --kernel K --initrd I "
			"[--requests N] [--concurrency 1..%u] [--boot-requests M] [--quick] "
			"[--qemu PATH | --no-qemu]\n",
			LOAD_MAX_CONCURRENCY);
		return -1;
	}
	return 0;
}

/* QEMU restored per request, as many times as a VM is booted per request. */
static void qemu_per_request(const struct opts *o, struct load_rows *rows, char *why, size_t len)
{
	const struct qemu_row_opts q = {
		.qemu = o->qemu, .kernel = o->kernel, .initrd = o->initrd, .cmdline = CMDLINE,
		.dir = dir, .port = 8080, .ready_port = 9, .requests = o->boot_requests,
	};

	why[0] = '\0';
	rows->qemu_why = why;
	if (!o->qemu) {
		load_result_init(&rows->qemu, 0);
		snprintf(why, len, "--no-qemu");
		return;
	}
	fprintf(stderr, "serve-bench: QEMU restored per request, %u of them ...\n", o->boot_requests);
	qemu_row(&q, &rows->qemu, why, len);
}

int main(int argc, char **argv)
{
	struct load_process before, after;
	struct load_rows rows;
	char qemu_why[256];
	struct opts o;
	pid_t daemon;
	int status = 1;

	if (parse(argc, argv, &o) < 0)
		return 64;
	curl_global_init(CURL_GLOBAL_ALL);
	snprintf(dir, sizeof(dir), "/tmp/vm-fork-serve-bench-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(target.sock, sizeof(target.sock), "%s/api.sock", dir);
	snprintf(target.function, sizeof(target.function), "words");
	limited = target;
	snprintf(limited.function, sizeof(limited.function), "limited");
	if (write_config(&o) < 0 || (daemon = start_daemon(&o)) < 0) {
		fprintf(stderr, "serve-bench: the daemon did not start (%s)\n", dir);
		return 1;
	}
	fprintf(stderr, "serve-bench: %u invocations, %u at once ...\n", o.requests, o.concurrency);
	load_run(&target, o.concurrency, o.concurrency, &rows.pool); /* warm-up: threads, allocator */
	load_result_free(&rows.pool);
	load_wait_idle(&target, MIN_WARM);
	load_process_figures(&target, &before);
	load_run(&target, o.requests, o.concurrency, &rows.pool);
	load_wait_idle(&target, MIN_WARM);
	load_process_figures(&target, &after);
	fprintf(stderr, "serve-bench: one at a time, and raw forks ...\n");
	load_run(&target, o.sequential, 1, &rows.seq);
	load_raw_forks(&target, o.sequential, dir, &rows.raw);
	fprintf(stderr, "serve-bench: one at a time with per-clone limits ...\n");
	rows.limits_enforced = load_limits_enforced(&limited, rows.limits_why,
						    sizeof(rows.limits_why));
	load_run(&limited, o.sequential, 1, &rows.limited);
	kill(daemon, SIGTERM);
	waitpid(daemon, &status, 0);
	fprintf(stderr, "serve-bench: a VM booted per request, %u of them ...\n", o.boot_requests);
	boot_per_request(&o, &rows.boot);
	qemu_per_request(&o, &rows, qemu_why, sizeof(qemu_why));
	load_report(stdout, kvm_kind(), &rows, &before, &after);
	printf("daemon: SIGTERM -> exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return load_all_correct(&rows.pool) && load_all_correct(&rows.seq) ? 0 : 1;
}
