/* vm-fork fuzz's run loop (server/fuzz.h): the guest's hooks, the end of a run, the next. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/x86_vectors.h"
#include "fork/fork.h"
#include "fork/reset.h"
#include "server/fuzz_int.h"

/* Each class of crash its own signal, as a process would die of it (docs/fuzzing.md). */
static int vector_signal(unsigned v)
{
	switch (v) {
	case 0: case 16: case 19: return SIGFPE;
	case 6: return SIGILL;
	case 1: case 3: return SIGTRAP;
	case 17: case 18: return SIGBUS;
	default: return SIGSEGV;
	}
}

void fuzz_crash_result(struct fuzz_run_result *r, uint64_t value)
{
	*r = (struct fuzz_run_result){ .outcome = FUZZ_CRASH, .code = (int)(value & 0xffff) };
	if ((value & ~0xffULL) == VMFORK_FUZZ_CRASH_EXCEPTION && (value & 0xff) < X86_NVECTORS) {
		unsigned v = value & 0xff;

		r->signal = vector_signal(v);
		if (x86_vector_names[v])
			snprintf(r->what, sizeof(r->what), "%s", x86_vector_names[v]);
		else
			snprintf(r->what, sizeof(r->what), "vector %u", v);
		return;
	}
	if ((value & ~0xffULL) == VMFORK_FUZZ_CRASH_SIGNAL && (value & 0xff) >= 1 &&
	    (value & 0xff) <= 64) {
		r->signal = value & 0xff;
		snprintf(r->what, sizeof(r->what), "signal %d in the guest", r->signal);
		return;
	}
	r->signal = SIGABRT;
	snprintf(r->what, sizeof(r->what), "crash report %#llx", (unsigned long long)value);
}

void fuzz_ending_result(struct fuzz_run_result *r, enum vm_stop_reason reason, int status)
{
	*r = (struct fuzz_run_result){ .outcome = FUZZ_CRASH };
	switch (reason) {
	case VM_STOP_GUEST_EXIT:
	case VM_STOP_POWEROFF:
		r->outcome = FUZZ_EXITED;
		r->code = reason == VM_STOP_GUEST_EXIT ? status & 0xff : 0;
		snprintf(r->what, sizeof(r->what), "%s %d",
			 reason == VM_STOP_POWEROFF ? "powered off" : "exited", r->code);
		return;
	case VM_STOP_TRIPLE_FAULT:
		r->signal = SIGSYS;
		snprintf(r->what, sizeof(r->what), "triple fault");
		return;
	case VM_STOP_RESET:
		r->signal = SIGQUIT;
		snprintf(r->what, sizeof(r->what), "the guest reset the machine");
		return;
	default:
		r->signal = SIGUSR2;
		snprintf(r->what, sizeof(r->what), "KVM could not go on");
	}
}

int fuzz_wait_status(const struct fuzz_run_result *r)
{
	switch (r->outcome) {
	case FUZZ_OK: return 0;
	case FUZZ_EXITED: return W_EXITCODE(r->code & 0xff, 0);
	case FUZZ_CRASH: return r->signal;
	default: return SIGKILL;
	}
}

/* The next run: afl-fuzz's command (or the replay's next), its input, its pid. */
static int begin_run(struct fuzz_session *s)
{
	bool was_killed = false;
	pid_t pid = 0;
	int ret = 0;

	if (s->cfg.afl)
		ret = afl_fs_next(&s->fs, &was_killed);
	else if (s->stats.runs >= s->cfg.runs || s->last.outcome == FUZZ_HANG)
		ret = -ECANCELED;
	/* A replay runs one input: read once (stdin may be a pipe), kept outside RAM. */
	if (!ret && (s->cfg.afl || !s->stats.runs))
		ret = fuzz_load_input(s);
	if (!ret && s->cfg.afl) {
		pid = fuzz_run_helper(s, was_killed);
		if (!s->cfg.coverage && s->map)
			s->map[0] = 1; /* one edge, the same every run: afl-fuzz sees no new paths */
	}
	pthread_mutex_lock(&s->lock);
	if (!ret && s->cfg.afl && pid <= 0)
		ret = -ECHILD;
	if (!ret) {
		s->run_active = true;
		s->run_seq++;
		s->run_start_ns = now_ns();
	}
	pthread_mutex_unlock(&s->lock);
	if (!ret && s->cfg.afl)
		ret = afl_fs_started(&s->fs, pid);
	fuzz_watch_poke(s);
	return ret;
}

/* Take run seq (0: whichever is on): false when none is, or another thread ended it. */
static bool claim_run(struct fuzz_session *s, uint64_t seq)
{
	bool mine;

	pthread_mutex_lock(&s->lock);
	mine = s->run_active && (!seq || seq == s->run_seq);
	if (mine)
		s->run_active = false;
	pthread_mutex_unlock(&s->lock);
	if (mine)
		fuzz_watch_poke(s);
	return mine;
}

static void finish_run(struct fuzz_session *s, const struct fuzz_run_result *r)
{
	s->last = *r;
	s->stats.runs++;
	s->stats.crashes += r->outcome == FUZZ_CRASH;
	s->stats.hangs += r->outcome == FUZZ_HANG;
	s->stats.exits += r->outcome == FUZZ_EXITED;
	if (r->outcome != FUZZ_OK)
		pr_info("fuzz: run %llu: %s", (unsigned long long)s->stats.runs, r->what);
	if (s->cfg.afl)
		afl_fs_finished(&s->fs, fuzz_wait_status(r)); /* afl-fuzz gone: the next read says so */
}

/* With the VM paused: back to the mark, and the next run; or the end. */
static int act_next(struct vm *vm, void *arg)
{
	struct fuzz_session *s = arg;
	struct reset_stats st;
	int ret = vm_reset_locked(vm, &st);

	if (!ret) {
		s->stats.reset_ns_total += st.total_ns;
		s->stats.pages_reset += st.pages_reset;
		ret = begin_run(s);
	}
	if (ret < 0) {
		if (ret != -EPIPE && ret != -ECANCELED)
			pr_err("fuzz: cannot go on: %s", strerror(-ret));
		vm_request_stop(vm, VM_STOP_REQUESTED, ret == -EPIPE || ret == -ECANCELED ? 0 : 1);
	}
	return 0;
}

static void end_run_on_vcpu(struct fuzz_session *s, struct vcpu *self,
			    const struct fuzz_run_result *r)
{
	int ret;

	if (!claim_run(s, 0))
		return; /* the watcher ended it: it is pausing the VM */
	finish_run(s, r);
	ret = vm_run_paused_from_vcpu(s->vm, self, act_next, s);
	if (ret < 0) {
		pr_err("fuzz: cannot reset the VM: %s", strerror(-ret));
		vm_request_stop(s->vm, VM_STOP_ERROR, 1);
	}
}

/* The hung run's status goes out only once its vCPU is out: no late edge lands in the next map. */
static int act_end_hang(struct vm *vm, void *arg)
{
	struct fuzz_session *s = arg;

	finish_run(s, &s->hung);
	return act_next(vm, s);
}

void fuzz_end_hang(struct fuzz_session *s, uint64_t seq, const char *what)
{
	int ret;

	if (!claim_run(s, seq))
		return;
	s->hung = (struct fuzz_run_result){ .outcome = FUZZ_HANG, .signal = SIGKILL };
	snprintf(s->hung.what, sizeof(s->hung.what), "hang: %s", what);
	ret = vm_while_paused(s->vm, act_end_hang, s);
	if (ret < 0) {
		pr_err("fuzz: cannot stop the hung run: %s", strerror(-ret));
		vm_request_stop(s->vm, VM_STOP_ERROR, 1);
	}
}

/* ---- The guest's hooks ---- */

static int say_hello(struct fuzz_session *s);

static void fuzz_mark(struct vm *vm, struct vcpu *self, uint64_t counter_gpa)
{
	struct fuzz_session *s = vm->fuzz;
	int ret;

	/*
	 * Every run starts from the one mark: another is ignored, and leaves the
	 * mark's result alone (it is not reset, and a harness may read it each run).
	 */
	if (s->marked) {
		ctl_count_bad(&vm->ctl);
		return;
	}
	vm_fork_engine_ops()->mark(vm, self, counter_gpa);
	if (vm->ctl.mark_result) {
		pr_err("fuzz: the guest's mark failed: %d", (int)vm->ctl.mark_result);
		vm_request_stop(vm, VM_STOP_ERROR, 1);
		return;
	}
	s->marked = true;
	/* Only now: afl-fuzz times the first run from its command, but waits for a hello. */
	ret = say_hello(s);
	if (!ret && s->fs.shm_input)
		ret = fuzz_attach_afl_input(s);
	if (!ret)
		ret = begin_run(s);
	if (ret < 0)
		vm_request_stop(vm, VM_STOP_REQUESTED, ret == -EPIPE || ret == -ECANCELED ? 0 : 1);
}

static void fuzz_done(struct vm *vm, struct vcpu *self)
{
	struct fuzz_run_result r = { .outcome = FUZZ_OK };

	snprintf(r.what, sizeof(r.what), "done");
	end_run_on_vcpu(vm->fuzz, self, &r);
}

static void fuzz_crash(struct vm *vm, struct vcpu *self, uint64_t value)
{
	struct fuzz_run_result r;

	fuzz_crash_result(&r, value);
	end_run_on_vcpu(vm->fuzz, self, &r);
}

static bool fuzz_ending(struct vm *vm, struct vcpu *self, enum vm_stop_reason reason, int status)
{
	struct fuzz_session *s = vm->fuzz;
	struct fuzz_run_result r;

	if (!s->marked)
		return false; /* before the mark: the guest never got ready, vm-fork fuzz ends */
	fuzz_ending_result(&r, reason, status);
	end_run_on_vcpu(s, self, &r);
	return true;
}

static void fuzz_no_fork(struct vm *vm, struct vcpu *self, uint64_t count)
{
	ctl_set_fork_result(&vm->ctl, -EOPNOTSUPP, 0);
}

/* A run ends with DONE or CRASH: a RESET of its own would rerun its input uncounted. */
static void fuzz_no_reset(struct vm *vm, struct vcpu *self)
{
	ctl_count_bad(&vm->ctl);
}

/* ---- The session ---- */

static void install_hooks(struct fuzz_session *s)
{
	s->ops = *vm_fork_engine_ops();
	s->ops.fork = fuzz_no_fork;
	s->ops.reset = fuzz_no_reset;
	s->ops.mark = fuzz_mark;
	s->ops.fuzz_done = fuzz_done;
	s->ops.fuzz_crash = fuzz_crash;
	s->ops.ending = fuzz_ending;
	s->vm->fuzz = s;
	s->vm->guest_ops = &s->ops;
}

static int check_config(const struct fuzz_config *cfg)
{
	if (cfg->map_size < 4096 || cfg->map_size > AFL_FS_MAP_MAX ||
	    (cfg->map_size & (cfg->map_size - 1))) {
		pr_err("fuzz: the map size %u is not a power of 2 from 4096 to %u", cfg->map_size,
		       AFL_FS_MAP_MAX);
		return -EINVAL;
	}
	if (!cfg->input_max || cfg->input_max > LAYOUT_FUZZ_INPUT_MAX - PAGE_SIZE) {
		pr_err("fuzz: the input limit must be from 1 byte to %llu",
		       LAYOUT_FUZZ_INPUT_MAX - PAGE_SIZE);
		return -EINVAL;
	}
	return 0;
}

static int say_hello(struct fuzz_session *s)
{
	int ret;

	if (!s->cfg.afl)
		return 0;
	ret = afl_fs_hello(&s->fs, AFL_FS_CTL_FD, AFL_FS_ST_FD, s->cfg.map_size,
			   getenv("__AFL_SHM_FUZZ_ID") != NULL);
	if (ret < 0)
		pr_err("fuzz: afl-fuzz did not take our hello: %s", strerror(-ret));
	return ret;
}

int fuzz_session_start(struct fuzz_session **out, struct vm *vm, const struct fuzz_config *cfg)
{
	struct fuzz_session *s;
	int ret = check_config(cfg);

	if (ret < 0)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	s->cfg = *cfg;
	s->helper_pidfd = -1;
	s->wake_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, NULL);
	ret = fuzz_map_regions(s);
	if (!ret)
		ret = fuzz_watch_start(s);
	if (ret < 0) {
		fuzz_session_end(s);
		return ret;
	}
	install_hooks(s);
	*out = s;
	return 0;
}

void fuzz_session_result(struct fuzz_session *s, struct fuzz_run_result *last,
			 struct fuzz_stats *stats)
{
	if (last)
		*last = s->last;
	if (stats)
		*stats = s->stats;
}

bool fuzz_session_marked(struct fuzz_session *s)
{
	return s->marked;
}

void fuzz_session_end(struct fuzz_session *s)
{
	if (!s)
		return;
	fuzz_watch_stop(s);
	fuzz_unmap_regions(s);
	if (s->vm && s->vm->fuzz == s) {
		s->vm->guest_ops = vm_fork_engine_ops();
		s->vm->fuzz = NULL;
	}
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
