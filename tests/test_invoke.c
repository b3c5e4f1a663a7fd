/*
 * invoke() (server/invoke.h) on a Linux template in this process: the
 * example function (guest/linux/fn-words.c) booted, paused, and invoked
 * again and again, each time in a fresh clone that is gone afterwards; a
 * guest that drops, hangs on or powers off under a request fails that
 * request alone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/process_stats.h"
#include "core/layout.h"
#include "fork/vmm.h"
#include "server/invoke.h"
#include "tests/harness.h"
#include "tests/linux_harness.h"
#include "vmm/vm.h"

#define RUNS 12

struct template {
	struct vmm vmm;
	struct vm *vm;
	char dir[40], console[80], initrd[80];
};

static bool listening(const char *out)
{
	return strstr(out, "fn-words: listening") || strstr(out, "fn-words: cannot");
}

/* Boot the function to its listening line, and pause it: the template. */
static void boot_template(struct template *t)
{
	char *kernel = linux_small_kernel(), script[96], cmd[512], vsock[80], console[96], *out = NULL;
	struct vm_config cfg = { .mem_size = 256 * MiB, .ncpus = 1, .console = console,
				 .kernel = kernel, .initrd = t->initrd,
				 .cmdline = "console=ttyS0 reboot=k panic=-1 i8042.noaux "
					    "initcall_blacklist=cmos_init quiet" };
	FILE *f;

	strcpy(t->dir, "/tmp/vm-fork-invoke-XXXXXX");
	cr_assert(mkdtemp(t->dir));
	snprintf(t->console, sizeof(t->console), "%s/console", t->dir);
	snprintf(t->initrd, sizeof(t->initrd), "%s/fn.cpio.gz", t->dir);
	snprintf(script, sizeof(script), "%s/init", t->dir);
	f = fopen(script, "w");
	cr_assert(f && fputs(linux_fn_init, f) >= 0 && fclose(f) == 0);
	snprintf(cmd, sizeof(cmd), "%s/tools/make-initramfs.sh %s %s %s", VMFORK_SRC_DIR, t->initrd,
		 script, harness_build_path("linux/fn-words"));
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(console, sizeof(console), "file:%s", t->console);
	snprintf(vsock, sizeof(vsock), "%s/f%%u.sock", t->dir);
	cfg.devices.args[device_by_option("vsock")] = vsock;
	cfg.devices.args[device_by_option("rng")] = "";
	cr_assert_eq(vmm_init(&t->vmm, NULL), 0);
	t->vmm.clone_console = "none";
	cr_assert_eq(vm_create(&t->vm, &t->vmm.kvm, &cfg), 0);
	cr_assert_eq(vm_boot(t->vm, &cfg), 0);
	cr_assert_eq(vmm_add(&t->vmm, t->vm), 0);
	cr_assert_eq(vm_start(t->vm), 0);
	for (unsigned i = 0; i < harness_wait_s(120) * 10 && !(out && listening(out)); i++) {
		free(out);
		usleep(100000);
		out = linux_slurp(t->console);
	}
	cr_assert(out && strstr(out, "fn-words: listening"), "the function never listened:\n%s",
		  out ? linux_tail(out) : "");
	free(out);
	free(kernel);
	cr_assert_eq(vm_pause(t->vm), 0);
}

static void destroy_template(struct template *t)
{
	char cmd[64];

	vmm_stop_all(&t->vmm, 0);
	vmm_wait_all_stopped(&t->vmm, 10000);
	vmm_destroy(&t->vmm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	cr_expect_eq(system(cmd), 0);
}

/* warm: in a clone forked paused beforehand, as the pool keeps them; else forked for the call. */
static int call_in(struct template *t, const char *body, unsigned timeout_ms, bool warm,
		   struct invoke_result *r)
{
	const struct invoke_request rq = { .template = t->vm, .port = 8080, .body = body,
					   .len = strlen(body), .timeout_ms = timeout_ms,
					   .max_answer = 4096 };
	struct vm *clone = NULL;

	if (warm)
		cr_assert_eq(invoke_fork_paused(&rq, &clone), 0);
	return invoke(&rq, clone, r);
}

static int call(struct template *t, const char *body, unsigned timeout_ms, struct invoke_result *r)
{
	return call_in(t, body, timeout_ms, false, r);
}

static unsigned vms(struct template *t)
{
	uint64_t ids[8];

	return vmm_list(&t->vmm, ids, 8);
}

Test(invoke, each_request_in_a_fresh_clone, .timeout = 150)
{
	static char randoms[RUNS][17];
	struct invoke_result r;
	struct template t;
	long long count = -1;
	unsigned fds = 0;

	SKIP_WITHOUT_KVM();
	boot_template(&t);
	for (unsigned i = 0; i < RUNS; i++) {
		json_error_t err;
		json_t *j;
		long long n, cid;
		const char *rnd;

		cr_assert_eq(call_in(&t, "ab", harness_wait_s(20) * 1000, i % 2, &r), 0, "run %u: %s",
			     i, strerror(errno));
		j = json_loads(r.answer, 0, &err);
		cr_assert(j && !json_unpack(j, "{s:I, s:I, s:s}", "count", &n, "cid", &cid,
					     "random", &rnd), "run %u: '%s'", i, r.answer);
		cr_expect_eq(cid, 3 + (long long)r.clone_id, "clone %llu answered as CID %lld",
			     (unsigned long long)r.clone_id, cid);
		cr_expect(count < 0 || n == count, "run %u counts %lld, not %lld", i, n, count);
		count = n;
		snprintf(randoms[i], sizeof(randoms[i]), "%s", rnd);
		for (unsigned k = 0; k < i; k++)
			cr_expect_str_neq(randoms[k], randoms[i], "runs %u and %u drew the same bytes", k, i);
		cr_log_info("run %u (%s): clone %llu, fork %llu us, answer %llu us: %s", i,
			    i % 2 ? "warm" : "forked", (unsigned long long)r.clone_id,
			    (unsigned long long)(r.fork_ns / 1000),
			    (unsigned long long)(r.answer_ns / 1000), r.answer);
		json_decref(j);
		free(r.answer);
		cr_expect_eq(vms(&t), 1, "run %u left its clone behind", i);
		if (i == 1)
			fds = process_open_fds();
	}
	cr_expect_eq(process_open_fds(), fds, "invocations leave fds behind");
	destroy_template(&t);
}

Test(invoke, a_failing_request_fails_alone, .timeout = 150)
{
	static const struct { const char *body; int err; } bad[] = {
		{ "!exit", -ENODATA }, { "!hang", -ETIMEDOUT }, { "!poweroff", -ENODATA },
	};
	struct invoke_result r;
	struct template t;

	SKIP_WITHOUT_KVM();
	boot_template(&t);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(call(&t, bad[i].body, harness_wait_s(3) * 1000, &r), bad[i].err, "%s",
			     bad[i].body);
		cr_expect_eq(r.stage_failed, INVOKE_ANSWER);
		cr_expect_null(r.answer);
		cr_expect_eq(vms(&t), 1, "%s left its clone behind", bad[i].body);
		cr_assert_eq(call(&t, "ab", harness_wait_s(20) * 1000, &r), 0,
			     "the request after %s failed", bad[i].body);
		free(r.answer);
	}
	destroy_template(&t);
}
