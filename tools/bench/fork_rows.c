/*
 * The fork engine's latency rows, next to the floors of the same run, and the
 * environment every fork row uses (struct fork_env, bench.h).
 *
 *  vm_fork_cold   vm_fork() of a paused template (idle.elf, paused after it
 *                 reported) into one started child, no warm shells:
 *                 fork_stats.total_ns. The template's first fork (freeze and
 *                 capture) is untimed: the running rows measure that case.
 *  vm_fork_warm   the same with a pool of WARM_SHELLS shells, full and fully
 *                 prepared (base mapped, template state loaded) before each fork.
 *  fork_running   the first fork of a running, never-forked VM (wait_fork.elf,
 *                 booted afresh for each sample, shells premapping its live
 *                 RAM, so the parent moves into one of them: fork.h), with
 *                 resume_parent: total_ns (child runnable), with .paused
 *                 (paused_ns) and .freeze (freeze_ns: 0 when it moved) as
 *                 sub-rows.
 *  fork_running2  the same VM's second fork RUN_GAP_MS later, after the bench
 *                 wrote DIRTY_PAGES pages of its RAM: total_ns and pages_copied.
 * Children are destroyed outside the timed part. fork_first.c has the rows
 * that wait for the child to act; clone_rows.c the memory rows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/layout.h"
#include "fork/fork.h"
#include "fork/shells.h"
#include "fork/vmm.h"
#include "tools/bench/bench.h"
#include "vmm/vm.h"

#define BOOT_TIMEOUT_MS   30000
#define POOL_TIMEOUT_MS   30000
#define RUN_GAP_MS        50      /* the parent runs this long between its two forks */
#define DIRTY_GPA         (32 * MiB) /* free RAM in wait_fork (its image ends near 1 MiB) */
#define DIRTY_PAGES       256

/* ---- the environment (shared with clone_rows.c) ---- */

void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int fork_env_init(struct fork_env *env, const struct bench_cfg *cfg)
{
	int ret;

	env->cfg = cfg;
	env->vmm = malloc(sizeof(*env->vmm));
	if (!env->vmm)
		return -ENOMEM;
	ret = vmm_init(env->vmm, NULL);
	if (ret < 0) {
		free(env->vmm);
		env->vmm = NULL;
		return ret;
	}
	env->vmm->clone_console = "none";
	return 0;
}

void fork_env_fini(struct fork_env *env)
{
	if (!env->vmm)
		return;
	vmm_destroy(env->vmm);
	free(env->vmm);
	env->vmm = NULL;
}

int fork_env_pool(struct fork_env *env, const struct vm *vm, unsigned target)
{
	if (env->vmm->shells)
		return 0;
	return shell_pool_create(&env->vmm->shells, &env->vmm->kvm, vm->mem.size, vm->ncpus,
				 &vm->cpuid_mask, target);
}

static int wait_report(struct vm *vm, unsigned timeout_ms)
{
	uint64_t r;

	for (unsigned i = 0; i < timeout_ms; i++) {
		if (vm_reports(vm, &r, 1) >= 1)
			return 0;
		if (vm_stopping(vm))
			return -EIO;
		sleep_ms(1);
	}
	return -ETIMEDOUT;
}

int fork_env_boot(struct fork_env *env, const char *guest, const char *cmdline, uint64_t size,
		  struct vm **out)
{
	char kernel[4200];
	struct vm_config vc = {
		.mem_size = size, .ncpus = 1, .console = "none", .kernel = kernel,
		.cmdline = cmdline,
	};
	struct vm *vm;
	int ret;

	snprintf(kernel, sizeof(kernel), "%s/%s.elf", env->cfg->guest_dir, guest);
	ret = vm_create(&vm, &env->vmm->kvm, &vc);
	if (ret < 0)
		return ret;
	ret = vm_boot(vm, &vc);
	if (!ret)
		ret = vmm_add(env->vmm, vm);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	ret = vm_start(vm);
	if (!ret)
		ret = wait_report(vm, BOOT_TIMEOUT_MS);
	if (ret < 0) {
		vmm_remove(env->vmm, vm->id);
		return ret;
	}
	*out = vm;
	return 0;
}

int fork_env_fork(struct vm *parent, bool resume_parent, struct vm **child,
		  struct fork_stats *st)
{
	struct fork_request req = {
		.count = 1, .start_children = true, .resume_parent = resume_parent,
	};

	return vm_fork(parent, &req, child, st);
}

void fork_env_drop(struct fork_env *env, struct vm *vm, bool put)
{
	/* The table's reference goes with vmm_remove(); the last put destroys it. */
	vmm_remove(env->vmm, vm->id);
	if (put)
		vmm_put(env->vmm, vm);
}

int fork_env_ready(struct fork_env *env, unsigned settle_ms)
{
	struct shell_pool *pool = env->vmm->shells;
	unsigned prepared = 0;
	int ret = 0;

	if (pool) {
		shell_pool_wait_full(pool, POOL_TIMEOUT_MS);
		ret = shell_pool_ready(pool, &prepared) >= shell_pool_target(pool) &&
		      prepared >= shell_pool_target(pool) ? 0 : -ETIMEDOUT;
	}
	if (settle_ms)
		sleep_ms(settle_ms);
	return ret;
}

unsigned fork_env_iters(const struct bench_cfg *cfg)
{
	return cfg->iters_vmfork > cfg->min_iters ? cfg->iters_vmfork : cfg->min_iters;
}

double p50_us(struct samples *s)
{
	return samples_pct(s, 50) / 1e3;
}

/* ---- vm_fork_cold, vm_fork_warm: forks of a paused idle template ---- */

/* n timed forks of the template into s; warm: each from a full pool. */
static int template_forks(struct fork_env *env, struct vm *tmpl, bool warm, unsigned n,
			  struct samples *s, struct samples *children)
{
	for (unsigned i = 0; i < n; i++) {
		struct fork_stats st;
		struct vm *child;
		int ret = fork_env_ready(env, 0);

		if (!ret)
			ret = fork_env_fork(tmpl, false, &child, &st);
		if (ret < 0)
			return ret;
		fork_env_drop(env, child, true);
		if (warm && st.from_shells != 1)
			return -EAGAIN; /* the pool was full: a cold child means a bug */
		samples_add(s, st.total_ns);
		samples_add(children, st.children_ns);
	}
	return 0;
}

int fork_env_first_fork(struct fork_env *env, struct vm *tmpl)
{
	struct fork_stats st;
	struct vm *child;
	int ret = fork_env_fork(tmpl, false, &child, &st);

	if (!ret)
		fork_env_drop(env, child, true);
	return ret;
}

static int template_row(struct bench_ctx *ctx, unsigned si, struct fork_env *env,
			struct vm *tmpl, bool warm)
{
	int row = warm ? ROW_FORK_WARM : ROW_FORK_COLD;
	unsigned n = fork_env_iters(ctx->cfg);
	struct samples s = { 0 }, ch = { 0 };
	int ret;

	ret = samples_init(&s, n);
	if (!ret)
		ret = samples_init(&ch, n);
	if (!ret)
		ret = template_forks(env, tmpl, warm, n, &s, &ch);
	if (!ret) {
		cell_set_samples(ctx, row, si, &s);
		cell_note(ctx, row, si, "%s; making the child p50 %.1f us",
			  warm ? "pool of 4, full+prepared before each" : "no shells",
			  p50_us(&ch));
	}
	samples_free(&s);
	samples_free(&ch);
	return ret;
}

static int template_rows(struct bench_ctx *ctx, unsigned si, struct fork_env *env)
{
	struct vm *tmpl;
	int ret = fork_env_boot(env, "idle", NULL, ctx->cfg->sizes[si], &tmpl);

	if (!ret)
		ret = vm_pause(tmpl);
	if (!ret)
		ret = fork_env_first_fork(env, tmpl);
	if (!ret)
		ret = template_row(ctx, si, env, tmpl, false);
	if (ret < 0) {
		cell_note(ctx, ROW_FORK_COLD, si, "failed: %s", strerror(-ret));
		return ret;
	}
	/* Shells premap the frozen base; the warm-up fork gives them its state. */
	ret = fork_env_pool(env, tmpl, WARM_SHELLS);
	if (!ret) {
		shell_pool_set_template(env->vmm->shells, &tmpl->mem, NULL, 0);
		ret = fork_env_first_fork(env, tmpl);
	}
	if (!ret)
		ret = template_row(ctx, si, env, tmpl, true);
	if (ret < 0)
		cell_note(ctx, ROW_FORK_WARM, si, "failed: %s", strerror(-ret));
	fork_env_drop(env, tmpl, false);
	return ret;
}

/* ---- fork_running, fork_running2: a freshly booted running VM ---- */

enum {
	RS_TOTAL, RS_PAUSED, RS_FREEZE, RS_CAPTURE, RS_CHILD, RS_MOVED,
	RS_TOTAL2, RS_PAGES2, RS_CAPTURE2, RS_CHILD2, RS_N
};

/*
 * What a guest that writes memory leaves for its next fork to copy: the bench
 * writes DIRTY_PAGES pages of the running parent's free RAM (the same private
 * pages a guest's own writes would make).
 */
static int dirty_parent(struct vm *vm)
{
	volatile uint8_t *p = gpa_ptr(&vm->mem, DIRTY_GPA, DIRTY_PAGES * PAGE_SIZE);

	if (!p)
		return -EFAULT;
	for (unsigned i = 0; i < DIRTY_PAGES; i++)
		p[(uint64_t)i * PAGE_SIZE] = (uint8_t)(i + 1);
	return 0;
}

/* Fork root (running, shells premapped its live RAM) twice, RUN_GAP_MS apart. */
static int running_twice(struct fork_env *env, struct vm *root, struct samples *s)
{
	struct fork_stats st;
	struct vm *child;
	uint64_t t0, ms;
	int ret = fork_env_ready(env, 0);

	if (!ret)
		ret = fork_env_fork(root, true, &child, &st);
	if (ret < 0)
		return ret;
	t0 = now_ns();
	fork_env_drop(env, child, true);
	if (st.from_shells != 1)
		return -EAGAIN;
	samples_add(&s[RS_TOTAL], st.total_ns);
	samples_add(&s[RS_PAUSED], st.paused_ns);
	samples_add(&s[RS_FREEZE], st.freeze_ns);
	samples_add(&s[RS_CAPTURE], st.capture_ns);
	samples_add(&s[RS_CHILD], st.children_ns);
	samples_add(&s[RS_MOVED], st.moved);
	ret = fork_env_ready(env, 0);
	ms = (now_ns() - t0) / 1000000;
	if (!ret && ms < RUN_GAP_MS)
		sleep_ms(RUN_GAP_MS - (unsigned)ms);
	if (!ret)
		ret = dirty_parent(root);
	if (!ret)
		ret = fork_env_fork(root, true, &child, &st);
	if (ret < 0)
		return ret;
	fork_env_drop(env, child, true);
	samples_add(&s[RS_TOTAL2], st.total_ns);
	samples_add(&s[RS_PAGES2], st.pages_copied);
	samples_add(&s[RS_CAPTURE2], st.capture_ns);
	samples_add(&s[RS_CHILD2], st.children_ns);
	return 0;
}

static int running_loop(struct bench_ctx *ctx, unsigned si, struct fork_env *env,
			struct samples *s)
{
	unsigned n = ctx->cfg->iters_boot;

	for (unsigned i = 0; i < n; i++) {
		struct vm *root = NULL;
		int ret = fork_env_boot(env, "wait_fork", WAIT_FORK_CMDLINE, ctx->cfg->sizes[si],
					&root);

		if (!ret)
			ret = fork_env_pool(env, root, 2);
		if (!ret) {
			/* Shells premap this VM's live RAM, as `vm-fork run --shells` does. */
			shell_pool_set_template(env->vmm->shells, &root->mem, NULL, 0);
			ret = running_twice(env, root, s);
		}
		if (!ret && vm_stopping(root))
			ret = -EIO;
		if (root)
			fork_env_drop(env, root, false);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The share of samples that are 1. */
static double moved_pct(const struct samples *s)
{
	uint64_t ones = 0;

	for (unsigned i = 0; i < s->n; i++)
		ones += s->ns[i] == 1;
	return s->n ? 100.0 * (double)ones / s->n : 0;
}

static void running_cells(struct bench_ctx *ctx, unsigned si, struct samples *s)
{
	uint64_t pages50, pages99;

	cell_set_samples(ctx, ROW_FORK_RUN, si, &s[RS_TOTAL]);
	cell_note(ctx, ROW_FORK_RUN, si,
		  "fresh VM each, %.0f%% moved into a shell; p50s: freeze %.0f capture %.0f "
		  "child %.0f us", moved_pct(&s[RS_MOVED]), p50_us(&s[RS_FREEZE]),
		  p50_us(&s[RS_CAPTURE]), p50_us(&s[RS_CHILD]));
	cell_set_samples(ctx, ROW_FORK_RUN_PAUSED, si, &s[RS_PAUSED]);
	cell_set_samples(ctx, ROW_FORK_RUN_FREEZE, si, &s[RS_FREEZE]);
	cell_set_samples(ctx, ROW_FORK_RUN2, si, &s[RS_TOTAL2]);
	pages50 = samples_pct(&s[RS_PAGES2], 50);
	pages99 = samples_pct(&s[RS_PAGES2], 99);
	cell_set(ctx, ROW_FORK_RUN2_PAGES, si, s[RS_PAGES2].n, (double)pages50, (double)pages99);
	cell_note(ctx, ROW_FORK_RUN2, si,
		  "%d ms after the 1st, %llu pages; capture+scan %.0f child %.0f us", RUN_GAP_MS,
		  (unsigned long long)pages50, p50_us(&s[RS_CAPTURE2]), p50_us(&s[RS_CHILD2]));
}

static int running_rows(struct bench_ctx *ctx, unsigned si)
{
	struct samples s[RS_N] = { 0 };
	struct fork_env env;
	int ret = fork_env_init(&env, ctx->cfg);

	for (unsigned k = 0; k < RS_N && !ret; k++)
		ret = samples_init(&s[k], ctx->cfg->iters_boot);
	if (!ret)
		ret = running_loop(ctx, si, &env, s);
	if (!ret)
		running_cells(ctx, si, s);
	else
		cell_note(ctx, ROW_FORK_RUN, si, "failed: %s", strerror(-ret));
	for (unsigned k = 0; k < RS_N; k++)
		samples_free(&s[k]);
	fork_env_fini(&env);
	return ret;
}

int bench_fork(struct bench_ctx *ctx, unsigned si)
{
	struct fork_env env;
	int ret, failed;

	if (!ctx->have_kvm) {
		cell_note(ctx, ROW_FORK_COLD, si, "no usable /dev/kvm");
		return -ENODEV;
	}
	ret = fork_env_init(&env, ctx->cfg);
	if (ret < 0) {
		cell_note(ctx, ROW_FORK_COLD, si, "vmm: %s", strerror(-ret));
		return ret;
	}
	failed = template_rows(ctx, si, &env);
	fork_env_fini(&env);
	ret = running_rows(ctx, si);
	return failed ? failed : ret;
}
