/*
 * The QEMU peer: Debian's qemu-system-x86_64 with KVM, no disk, sitting in
 * SeaBIOS. Once per size its state is saved with the monitor (stop, then
 * migrate to "exec:cat > FILE"); then each restore starts a new QEMU with
 * -incoming defer and is timed as
 *   qemu_start          process start -> QMP answers (qmp_capabilities done)
 *   qemu_restore        migrate-incoming "exec:cat FILE" -> MIGRATION completed
 *                       -> cont answered (the VM runs again)
 *   qemu_restore_total  process start -> the VM runs again
 * QEMU that cannot run here leaves these cells empty with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/layout.h"
#include "tools/bench/bench.h"
#include "tools/bench/qmp.h"

#define QEMU_START_MS    30000
#define QEMU_MIGRATE_MS  300000

struct qemu_paths {
	char sock[96], err[96], state[96];
};

static void qemu_paths(const struct bench_ctx *ctx, struct qemu_paths *p)
{
	snprintf(p->sock, sizeof(p->sock), "%s/qmp.sock", ctx->tmpdir);
	snprintf(p->err, sizeof(p->err), "%s/qemu.err", ctx->tmpdir);
	snprintf(p->state, sizeof(p->state), "%s/state.bin", ctx->tmpdir);
}

static pid_t qemu_spawn(const struct bench_ctx *ctx, const struct qemu_paths *p, uint64_t size,
			bool incoming)
{
	char mem[32], qmp[128];
	/* Without incoming, the NULL ends argv before "defer". */
	const char *argv[] = {
		ctx->cfg->qemu, "-accel", "kvm", "-nographic", "-nodefaults", "-no-user-config",
		"-m", mem, "-qmp", qmp, incoming ? "-incoming" : NULL, "defer", NULL,
	};
	pid_t pid;

	snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(size / MiB));
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", p->sock);
	unlink(p->sock);
	pid = fork();
	if (pid == 0)
		qemu_exec_child(argv, p->err);
	return pid < 0 ? -errno : pid;
}

/* Ask QEMU to quit; kill it if it does not within 5 s. Always reaps it. */
static void qemu_stop(struct qmp *q, pid_t pid)
{
	int status;

	if (q->fd >= 0)
		qmp_cmd(q, "quit", NULL, 2000);
	qmp_close(q);
	if (q->pid <= 0)
		return; /* already reaped while connecting */
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) != 0)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static int migrate(struct qmp *q, const char *cmd, const char *fmt, const char *file)
{
	char uri[160];

	snprintf(uri, sizeof(uri), fmt, file);
	return qmp_migrate(q, cmd, uri, QEMU_MIGRATE_MS);
}

static int qemu_save(const struct bench_ctx *ctx, const struct qemu_paths *p, uint64_t size)
{
	struct qmp q = { .fd = -1 };
	pid_t pid = qemu_spawn(ctx, p, size, false);
	int ret;

	if (pid < 0)
		return pid;
	ret = qmp_open(&q, p->sock, pid, QEMU_START_MS);
	if (!ret) {
		usleep(ctx->cfg->qemu_run_ms * 1000);
		ret = qmp_cmd(&q, "stop", NULL, 5000);
	}
	if (!ret)
		ret = migrate(&q, "migrate", "exec:cat > %s", p->state);
	qemu_stop(&q, pid);
	return ret;
}

struct restore_times {
	uint64_t start, restore, total;
};

static int qemu_restore(const struct bench_ctx *ctx, const struct qemu_paths *p, uint64_t size,
			struct restore_times *t)
{
	struct qmp q = { .fd = -1 };
	uint64_t t0 = now_ns(), t1, t2, t3;
	pid_t pid = qemu_spawn(ctx, p, size, true);
	int ret;

	if (pid < 0)
		return pid;
	ret = qmp_open(&q, p->sock, pid, QEMU_START_MS);
	t1 = now_ns();
	t2 = t1;
	if (!ret)
		ret = migrate(&q, "migrate-incoming", "exec:cat %s", p->state);
	if (!ret)
		ret = qmp_cmd(&q, "cont", NULL, 10000);
	t3 = now_ns();
	/* Checked after the clock stops: it must really run. */
	if (!ret && !qmp_running(&q))
		ret = -EPROTO;
	qemu_stop(&q, pid);
	*t = (struct restore_times){ .start = t1 - t0, .restore = t3 - t2, .total = t3 - t0 };
	return ret;
}

/* The last line QEMU printed on stderr, for the note. */
static void qemu_last_error(const struct qemu_paths *p, char *buf, size_t len)
{
	FILE *f = fopen(p->err, "re");
	char line[256];

	buf[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] && !strstr(line, "warning:")) {
			size_t n = strnlen(line, len - 1); /* long lines are cut, on purpose */

			memcpy(buf, line, n);
			buf[n] = 0;
		}
	}
	fclose(f);
}

static void qemu_note(struct bench_ctx *ctx, unsigned si, const struct qemu_paths *p,
		      const char *stage, int err)
{
	char why[BENCH_NOTE_MAX];

	qemu_last_error(p, why, sizeof(why));
	if (!why[0])
		snprintf(why, sizeof(why), "%s", strerror(-err));
	for (int row = ROW_QEMU_START; row <= ROW_QEMU_TOTAL; row++)
		cell_note(ctx, row, si, "%s: %s", stage, why);
	fprintf(stderr, "bench: QEMU %s failed: %s\n", stage, why);
}

static int restore_loop(struct bench_ctx *ctx, unsigned si, const struct qemu_paths *p)
{
	unsigned iters = ctx->cfg->iters_qemu;
	struct samples s[3] = { 0 };
	int ret = 0;

	for (unsigned k = 0; k < 3 && !ret; k++)
		ret = samples_init(&s[k], iters);
	for (unsigned i = 0; i < iters && !ret; i++) {
		struct restore_times t;

		ret = qemu_restore(ctx, p, ctx->cfg->sizes[si], &t);
		samples_add(&s[0], t.start);
		samples_add(&s[1], t.restore);
		samples_add(&s[2], t.total);
	}
	if (!ret) {
		cell_set_samples(ctx, ROW_QEMU_START, si, &s[0]);
		cell_set_samples(ctx, ROW_QEMU_RESTORE, si, &s[1]);
		cell_set_samples(ctx, ROW_QEMU_TOTAL, si, &s[2]);
	}
	for (unsigned k = 0; k < 3; k++)
		samples_free(&s[k]);
	return ret;
}

int bench_qemu(struct bench_ctx *ctx, unsigned si)
{
	struct qemu_paths p;
	struct stat st;
	int ret;

	if (!ctx->cfg->qemu) {
		for (int row = ROW_QEMU_START; row <= ROW_QEMU_TOTAL; row++)
			cell_note(ctx, row, si, "QEMU not measured (--no-qemu or not installed)");
		return 0;
	}
	qemu_paths(ctx, &p);
	ret = qemu_save(ctx, &p, ctx->cfg->sizes[si]);
	if (ret < 0) {
		qemu_note(ctx, si, &p, "save", ret);
	} else {
		ret = restore_loop(ctx, si, &p);
		if (ret < 0)
			qemu_note(ctx, si, &p, "restore", ret);
	}
	if (!ret && stat(p.state, &st) == 0)
		cell_note(ctx, ROW_QEMU_RESTORE, si, "state file %.1f MiB (zero pages elided)",
			  (double)st.st_size / MiB);
	unlink(p.state);
	unlink(p.err);
	unlink(p.sock);
	return ret;
}
