/*
 * vsock to a clone: `vm-fork run` of the small kernel with vsock-echo
 * (guest/linux/vsock-echo.c) listening on port 1234, paused once it
 * listens, then forked one clone at a time through the API (PUT
 * /v1/vms/0/fork, count 1, started); timed from the fork request to the
 * first line a host client of the clone's socket reads from the guest
 * server: the clone runs, its driver takes the TRANSPORT_RESET, the
 * REQUEST goes in, the server accepts and answers with its new CID.
 *   vsock_first_reply   fork request -> the clone's first vsock reply (256 MiB only)
 * Each clone is stopped before the next fork.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/layout.h"
#include "tools/bench/bench.h"

#define CMDLINE  "console=ttyS0 reboot=k panic=-1 i8042.noaux initcall_blacklist=cmos_init quiet"
#define READY    "vsock-echo: listening"
#define LIMIT_MS 300000

static const char init_script[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t devtmpfs dev /dev\n"
	"/bin/vsock-echo 1234 &\n"
	"while :; do sleep 10; done\n";

struct vsock_files {
	char vmfork[4096], kernel[4096], echo[4096], initrd[4096], console[4096], api[4096];
	char sock_dir[4096];
};

static int unix_connect(const char *path, unsigned timeout_s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* One HTTP request to the API over its socket (Connection: close): the body's JSON, or NULL. */
static json_t *api(const char *sock, const char *method, const char *path, const char *body)
{
	char req[512], resp[16384];
	size_t have = 0;
	ssize_t n;
	int fd = unix_connect(sock, 60), len;
	char *start;

	if (fd < 0)
		return NULL;
	len = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: vm-fork\r\nConnection: close\r\n"
		       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", method, path,
		       strlen(body), body);
	if (write(fd, req, (size_t)len) != len) {
		close(fd);
		return NULL;
	}
	while (have + 1 < sizeof(resp) && (n = read(fd, resp + have, sizeof(resp) - 1 - have)) > 0)
		have += (size_t)n;
	close(fd);
	resp[have] = '\0';
	start = strstr(resp, "\r\n\r\n");
	if (strncmp(resp, "HTTP/1.1 2", 10) || !start)
		return NULL;
	return json_loads(start + 4, 0, NULL);
}

/* Whether the console file holds READY yet. */
static bool console_ready(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	bool ready = false;

	while (f && !ready && fgets(line, sizeof(line), f))
		ready = strstr(line, READY) != NULL;
	if (f)
		fclose(f);
	return ready;
}

static int files(struct bench_ctx *ctx, struct vsock_files *f)
{
	const char *g = ctx->cfg->guest_dir;
	char script[4096], cmd[16384];
	FILE *s;

	snprintf(f->vmfork, sizeof(f->vmfork), "%s/../vm-fork", g);
	snprintf(f->kernel, sizeof(f->kernel), "%s/../linux/guest-bzImage", g);
	snprintf(f->echo, sizeof(f->echo), "%s/../linux/vsock-echo", g);
	snprintf(f->initrd, sizeof(f->initrd), "%s/vsock-initrd.cpio.gz", ctx->tmpdir);
	snprintf(f->console, sizeof(f->console), "%s/vsock-console", ctx->tmpdir);
	snprintf(f->api, sizeof(f->api), "%s/vsock-api.sock", ctx->tmpdir);
	snprintf(f->sock_dir, sizeof(f->sock_dir), "%s", ctx->tmpdir);
	snprintf(script, sizeof(script), "%s/vsock-init", ctx->tmpdir);
	if (access(f->kernel, R_OK) || access(f->echo, X_OK) || access("tools/make-initramfs.sh", X_OK))
		return -ENOENT;
	s = fopen(script, "w");
	if (!s || fputs(init_script, s) < 0 || fclose(s))
		return -EIO;
	snprintf(cmd, sizeof(cmd), "tools/make-initramfs.sh %s %s %s", f->initrd, script, f->echo);
	return system(cmd) == 0 ? 0 : -EIO;
}

/* Start the template and wait until its server listens: its pid, or -errno. */
static pid_t start_template(const struct vsock_files *f)
{
	char console[4200], vsock[4200];
	const char *argv[] = { f->vmfork, "run", "--kernel", f->kernel, "--initrd", f->initrd,
			       "--mem", "256M", "--cmdline", CMDLINE, "--console", console,
			       "--api", f->api, "--vsock", vsock, NULL };
	uint64_t end = now_ns() + LIMIT_MS * 1000000ULL;
	pid_t pid;

	snprintf(console, sizeof(console), "file:%s", f->console);
	snprintf(vsock, sizeof(vsock), "%s/v%%u.sock", f->sock_dir);
	unlink(f->console);
	pid = fork();
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -errno;
	while (now_ns() < end && !console_ready(f->console) && waitpid(pid, NULL, WNOHANG) == 0)
		usleep(20000);
	if (console_ready(f->console))
		return pid;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -ETIMEDOUT;
}

/* Read one line (the OK or the server's answer); 0, or -EIO. */
static int read_line(int fd)
{
	char c;

	while (read(fd, &c, 1) == 1)
		if (c == '\n')
			return 0;
	return -EIO;
}

/* Fork one clone and time it to its first vsock reply; the clone is stopped after. */
static int one(const struct vsock_files *f, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	json_t *ans = api(f->api, "PUT", "/v1/vms/0/fork", "{\"count\": 1, \"start\": true}");
	json_t *child = json_array_get(json_object_get(ans, "children"), 0);
	json_int_t id = json_integer_value(json_object_get(child, "id"));
	char path[4200];
	int fd, ret;

	json_decref(ans);
	if (!child)
		return -EIO;
	snprintf(path, sizeof(path), "%s/v%lld.sock", f->sock_dir, (long long)id);
	fd = unix_connect(path, 60);
	if (fd < 0)
		return fd;
	ret = write(fd, "CONNECT 1234\n", 13) == 13 ? 0 : -EIO;
	if (!ret)
		ret = read_line(fd);
	if (!ret)
		ret = read_line(fd);
	*ns = now_ns() - t0;
	close(fd);
	snprintf(path, sizeof(path), "/v1/vms/%lld/stop", (long long)id);
	json_decref(api(f->api, "PUT", path, "{}"));
	return ret;
}

int bench_vsock(struct bench_ctx *ctx, unsigned si)
{
	unsigned n = ctx->cfg->quick ? 3 : 10;
	struct vsock_files f;
	struct samples s;
	uint64_t ns = 0;
	pid_t pid;
	int ret;

	if (ctx->cfg->sizes[si] != 256 * MiB)
		return 0;
	if (!ctx->have_kvm)
		return -ENODEV;
	if (files(ctx, &f) < 0) {
		cell_note(ctx, ROW_VSOCK_REPLY, si, "no guest-bzImage, linux/vsock-echo or make-initramfs");
		return 0;
	}
	pid = start_template(&f);
	if (pid < 0) {
		cell_note(ctx, ROW_VSOCK_REPLY, si, "the template never listened: %s", strerror((int)-pid));
		return (int)pid;
	}
	json_decref(api(f.api, "PUT", "/v1/vms/0/pause", "{}"));
	ret = samples_init(&s, n);
	for (unsigned i = 0; !ret && i < n; i++) {
		ret = one(&f, &ns);
		samples_add(&s, ns);
	}
	if (ret < 0)
		cell_note(ctx, ROW_VSOCK_REPLY, si, "no reply from a clone: %s", strerror(-ret));
	else
		cell_set_samples(ctx, ROW_VSOCK_REPLY, si, &s);
	samples_free(&s);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return ret;
}
