/*
 * From a fork request to the child doing something: two rows, each from a
 * paused template with a full pool of prepared warm shells, timed from just
 * before vm_fork() by a thread that spins (no sleeping) on what the child does.
 *
 *  fork_first_insn    fork_isolation.elf paused while it spins at CPL3 on the
 *                     go word of its mailbox (guest RAM, no exits): a known
 *                     point. The child is forked paused, the bench writes its
 *                     go word (its own RAM) and resumes it; the clock stops
 *                     when the child's mailbox holds the CLONE_ID it read from
 *                     the control device (one MMIO exit, then one store).
 *  fork_first_report  wait_fork.elf paused anywhere: the child looks at
 *                     GENERATION once per 1 ms timer tick, so the figure holds
 *                     the rest of the tick the template was paused in (the same
 *                     for every child of one template); the clock stops when
 *                     vm_reports(child) shows its first report.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/layout.h"
#include "fork/fork.h"
#include "fork/shells.h"
#include "fork/vmm.h"
#include "tools/bench/bench.h"
#include "vmm/vm.h"

#define FIRST_TIMEOUT_NS (2000ull * 1000 * 1000)
#define ISO_CMDLINE      "timeout_ms=600000"
#define ISO_SETTLE_MS    20       /* the template gets from its report to wait_go */
/*
 * The last child's teardown leaves work behind (KVM's deferred VM destruction,
 * kthreads exiting) that would keep the next child's vCPU off the host's CPUs
 * for milliseconds: let it finish before each timed fork.
 */
#define FIRST_SETTLE_MS  20
/* guest/fork_isolation.c's mailbox: go at +0x00 (host), clone at +0x10 (guest). */
#define FI_MAILBOX       0x00fff000ULL
#define FI_GO            (FI_MAILBOX + 0x00)
#define FI_CLONE         (FI_MAILBOX + 0x10)

/* How a row's child is started and what counts as its first action. */
struct first_kind {
	int row;
	const char *guest, *cmdline;
	bool go;                  /* fork paused, write the go word, resume */
	const char *note;
};

static const struct first_kind first_insn = {
	ROW_FORK_FIRST_INSN, "fork_isolation", ISO_CMDLINE, true,
	"template spins on a RAM word, no tick; fork+go+resume p50 %.1f us",
};
static const struct first_kind first_report = {
	ROW_FORK_FIRST_REPORT, "wait_fork", WAIT_FORK_CMDLINE, false,
	"guest polls once per 1 ms tick; vm_fork part p50 %.1f us",
};

/* The child's first report ([0], its CLONE_ID) or, for fork_isolation, its mailbox's. */
static bool first_seen(const struct first_kind *k, struct vm *child, uint64_t *value)
{
	volatile uint64_t *clone;

	if (!k->go)
		return vm_reports(child, value, 1) >= 1;
	clone = gpa_ptr(&child->mem, FI_CLONE, sizeof(*clone));
	*value = clone ? *clone : 0;
	return *value != 0;
}

static int wait_first(const struct first_kind *k, struct vm *child, uint64_t t0, uint64_t *ns)
{
	uint64_t v = 0;

	for (;;) {
		/* Read before looking: a child that acts and exits at once is no failure. */
		bool stopped = vm_stopping(child);

		if (first_seen(k, child, &v))
			break;
		if (stopped || now_ns() - t0 > FIRST_TIMEOUT_NS)
			return -ETIMEDOUT;
	}
	*ns = now_ns() - t0;
	return v == child->id ? 0 : -EPROTO;
}

/* Fork one child of tmpl and start it as k says. */
static int start_child(const struct first_kind *k, struct vm *tmpl, struct vm **child)
{
	struct fork_request req = { .count = 1, .start_children = !k->go };
	struct fork_stats st;
	uint64_t go = 1;
	int ret = vm_fork(tmpl, &req, child, &st);

	if (ret < 0 || !k->go)
		return ret;
	ret = guest_write(&(*child)->mem, FI_GO, &go, sizeof(go));
	return ret < 0 ? ret : vm_resume(*child);
}

static int first_loop(const struct first_kind *k, struct fork_env *env, struct vm *tmpl,
		      struct samples *s, struct samples *fork_part)
{
	for (unsigned i = 0; i < s->cap; i++) {
		struct vm *child;
		uint64_t t0, ns = 0;
		int ret = fork_env_ready(env, FIRST_SETTLE_MS);

		if (ret < 0)
			return ret;
		t0 = now_ns();
		ret = start_child(k, tmpl, &child);
		if (ret < 0)
			return ret;
		samples_add(fork_part, now_ns() - t0);
		ret = wait_first(k, child, t0, &ns);
		fork_env_drop(env, child, true);
		if (ret < 0)
			return ret;
		samples_add(s, ns);
	}
	return 0;
}

static int first_measure(const struct first_kind *k, struct bench_ctx *ctx, unsigned si,
			 struct fork_env *env, struct vm *tmpl)
{
	unsigned n = fork_env_iters(ctx->cfg);
	struct samples s = { 0 }, fp = { 0 };
	int ret;

	ret = samples_init(&s, n);
	if (!ret)
		ret = samples_init(&fp, n);
	if (!ret)
		ret = first_loop(k, env, tmpl, &s, &fp);
	if (!ret) {
		cell_set_samples(ctx, k->row, si, &s);
		cell_note(ctx, k->row, si, k->note, p50_us(&fp));
	}
	samples_free(&s);
	samples_free(&fp);
	return ret;
}

static int first_row(const struct first_kind *k, struct bench_ctx *ctx, unsigned si)
{
	struct fork_env env;
	struct vm *tmpl = NULL;
	int ret = fork_env_init(&env, ctx->cfg);

	if (!ret)
		ret = fork_env_boot(&env, k->guest, k->cmdline, ctx->cfg->sizes[si], &tmpl);
	if (!ret)
		ret = fork_env_pool(&env, tmpl, WARM_SHELLS);
	if (!ret) {
		shell_pool_set_template(env.vmm->shells, &tmpl->mem, NULL, 0);
		if (k->go)
			sleep_ms(ISO_SETTLE_MS);
		ret = vm_pause(tmpl);
	}
	/* Freeze and capture; from then on the shells hold the template's state. */
	if (!ret)
		ret = fork_env_first_fork(&env, tmpl);
	if (!ret)
		ret = first_measure(k, ctx, si, &env, tmpl);
	if (ret < 0)
		cell_note(ctx, k->row, si, "failed: %s", strerror(-ret));
	fork_env_fini(&env);
	return ret;
}

int bench_fork_first(struct bench_ctx *ctx, unsigned si)
{
	int ret, ret2;

	if (!ctx->have_kvm) {
		cell_note(ctx, ROW_FORK_FIRST_INSN, si, "no usable /dev/kvm");
		return -ENODEV;
	}
	ret = first_row(&first_insn, ctx, si);
	ret2 = first_row(&first_report, ctx, si);
	return ret ? ret : ret2;
}
