/*
 * bench-serve's QEMU row: the same function (kernel, initramfs, command
 * line, 256 MiB) under Debian's QEMU with KVM, vhost-vsock-pci and a
 * VMGenID device, booted once until its guest says ready, saved (stop, then
 * migrate to a file), and restored per request: a new QEMU with -incoming
 * defer, migrate-incoming, cont, and the body to the guest's port over
 * AF_VSOCK. Each request is timed from the QEMU process's start to the
 * answer's end; the QEMU is ended after it, as a clone is.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "tools/bench/qmp.h"
#include "tools/serve_bench/qemu_row.h"

#define START_MS   30000
#define READY_MS   300000
#define MIGRATE_MS 300000
#define ANSWER_MS  60000

struct qemu_run {
	const struct qemu_row_opts *o;
	char sock[128], err[128], state[128];
	unsigned cid;
};

static pid_t spawn_qemu(const struct qemu_run *r, bool incoming)
{
	char qmp[160], dev[64];
	const char *argv[] = {
		r->o->qemu, "-accel", "kvm", "-cpu", "host", "-m", "256M", "-nographic",
		"-nodefaults", "-no-user-config", "-kernel", r->o->kernel, "-initrd", r->o->initrd,
		"-append", r->o->cmdline, "-device", dev, "-device", "vmgenid,guid=auto", "-qmp", qmp,
		incoming ? "-incoming" : NULL, "defer", NULL,
	};
	pid_t pid;

	snprintf(dev, sizeof(dev), "vhost-vsock-pci,guest-cid=%u", r->cid);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", r->sock);
	unlink(r->sock);
	pid = fork();
	if (pid == 0)
		qemu_exec_child(argv, r->err);
	return pid;
}

static void end_qemu(struct qmp *q, pid_t pid)
{
	qmp_close(q);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The guest's "ready" connection to the host's port ready_port (AF_VSOCK), waited for. */
static int wait_ready(int listener)
{
	struct pollfd p = { .fd = listener, .events = POLLIN };
	int fd;

	if (poll(&p, 1, READY_MS) != 1)
		return -ETIMEDOUT;
	fd = accept(listener, NULL, NULL);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int vsock_listen(unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int migrate(struct qmp *q, const char *cmd, const char *fmt, const char *file)
{
	char uri[192];

	snprintf(uri, sizeof(uri), fmt, file);
	return qmp_migrate(q, cmd, uri, MIGRATE_MS);
}

/* Boot once until ready, then save the state file. */
static int save(struct qemu_run *r, char *why, size_t len)
{
	struct qmp q = { .fd = -1 };
	int listener = vsock_listen(r->o->ready_port), ret;
	pid_t pid;

	if (listener < 0) {
		snprintf(why, len, "no AF_VSOCK listener on the host (%s): modprobe vhost_vsock",
			 strerror(-listener));
		return listener;
	}
	pid = spawn_qemu(r, false);
	ret = pid < 0 ? -errno : qmp_open(&q, r->sock, pid, START_MS);
	if (!ret)
		ret = wait_ready(listener);
	if (!ret)
		ret = qmp_cmd(&q, "stop", NULL, 5000);
	if (!ret)
		ret = migrate(&q, "migrate", "exec:cat > %s", r->state);
	if (ret < 0)
		snprintf(why, len, "QEMU's boot and save: %s (see %s)", strerror(-ret), r->err);
	if (pid > 0)
		end_qemu(&q, pid);
	close(listener);
	return ret;
}

/*
 * A connection to the guest's port. Right after cont the guest may still be
 * handling the transport reset that QEMU sends a restored VM, and refuse.
 */
static int connect_guest(unsigned cid, unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	struct timeval tv = { .tv_sec = ANSWER_MS / 1000 };
	uint64_t deadline = now_ns() + ANSWER_MS * 1000000ull;

	for (;;) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		err = -errno;
		close(fd);
		if ((err != -ECONNRESET && err != -ECONNREFUSED) || now_ns() > deadline)
			return err;
		usleep(1000);
	}
}

/* The body to the guest's port, the answer (to EOF) into buf. */
static int call(unsigned cid, unsigned port, char *buf, size_t size)
{
	int fd = connect_guest(cid, port), ret = 0;
	size_t n = 0;
	ssize_t got;

	if (fd < 0)
		return fd;
	if (write(fd, "ab", 2) != 2 || shutdown(fd, SHUT_WR) < 0)
		ret = -errno;
	while (!ret && n + 1 < size && (got = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = '\0';
	close(fd);
	return ret ? ret : n ? 0 : -ENODATA;
}

/* One request: a QEMU restored from the state file, its answer. */
static int restore_once(struct qemu_run *r, struct load_sample *s)
{
	struct qmp q = { .fd = -1 };
	uint64_t start = now_ns();
	pid_t pid = spawn_qemu(r, true);
	char answer[512];
	int ret = pid < 0 ? -errno : qmp_open(&q, r->sock, pid, START_MS);

	if (!ret)
		ret = migrate(&q, "migrate-incoming", "exec:cat %s", r->state);
	if (!ret)
		ret = qmp_cmd(&q, "cont", NULL, 10000);
	if (!ret)
		ret = call(r->cid, r->o->port, answer, sizeof(answer));
	s->e2e_ns = now_ns() - start;
	if (!ret && strstr(answer, "\"count\":")) {
		const char *rnd = strstr(answer, "\"random\":\"");

		s->status = 200;
		if (rnd)
			snprintf(s->random, sizeof(s->random), "%.16s", rnd + 10);
	}
	if (pid > 0)
		end_qemu(&q, pid);
	return ret;
}

int qemu_row(const struct qemu_row_opts *o, struct load_result *res, char *why, size_t len)
{
	struct qemu_run r = { .o = o, .cid = 100000 + (unsigned)getpid() % 100000 };
	uint64_t start;
	int ret;

	snprintf(r.sock, sizeof(r.sock), "%s/qmp.sock", o->dir);
	snprintf(r.err, sizeof(r.err), "%s/qemu.err", o->dir);
	snprintf(r.state, sizeof(r.state), "%s/qemu.state", o->dir);
	ret = save(&r, why, len);
	load_result_init(res, ret < 0 ? 0 : o->requests);
	if (ret < 0)
		return ret;
	start = now_ns();
	for (unsigned i = 0; i < o->requests; i++) {
		res->samples[i].clone_id = i + 1; /* each restore is a VM of its own */
		ret = restore_once(&r, &res->samples[i]);
		if (ret < 0)
			snprintf(why, len, "a restore: %s (see %s)", strerror(-ret), r.err);
	}
	res->wall_ns = now_ns() - start;
	res->concurrency = 1;
	unlink(r.state);
	return 0;
}
