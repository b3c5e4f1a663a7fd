/*
 * Identity on fork, seen from Linux (the small kernel, ACPI, VMGenID): clones
 * of one template draw different random numbers right after they resume, and
 * their wall clock is the host's even when they were made from a capture
 * taken long before.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

#define NCLONES 16

/* Once a second: the guest's time and 16 bytes of its /dev/urandom. */
static const char tick_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t devtmpfs dev /dev\n"
	"mount -t sysfs sys /sys\n"
	"echo \"vm-fork-init: ready, vmgenid driver: $(ls /sys/bus/acpi/drivers | grep -c vmgenid)\"\n"
	/* settle=N (the command line's): wait for an uptime of N s, when Linux reseeds its CRNG
	 * only every N/2 s, so that the control's clones share the CRNG reseeded at each tick. */
	"while [ \"$(cut -d. -f1 /proc/uptime)\" -lt \"${settle:-0}\" ]; do sleep 1; done\n"
	"while :; do\n"
	/* The test pauses the template only after a tick's line, never inside its draw. */
	"  echo draw\n"
	/* The date last: the pipeline before it takes seconds under TCG. */
	"  echo \"tick $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n') $(date +%s)\"\n"
	/* After the draw: a clone resumed in the sleep draws next, before any reseed of its own. */
	"  reseed 2>/dev/null\n"
	"  sleep 1\n"
	"done\n";

struct tick {
	long long date;
	char random[33];
};

/* The first whole tick line in out. */
static bool first_tick(const char *out, struct tick *t)
{
	const char *p = strstr(out, "tick ");

	return p && strchr(p, '\n') && sscanf(p, "tick %32[0-9a-f] %lld", t->random, &t->date) == 2 &&
	       strlen(t->random) == 32;
}

static bool has_tick(const char *out)
{
	struct tick t;

	return first_tick(out, &t);
}

/* The last draw's tick line is whole: the guest is between ticks. */
static bool after_tick(const char *out)
{
	const char *draw = NULL;

	for (const char *p = strstr(out, "\ndraw"); p; p = strstr(p + 1, "\ndraw"))
		draw = p;
	return draw && has_tick(draw);
}

/*
 * Pause the template between two ticks. A template paused inside a draw has
 * drawn its random bytes, or read its clock, before the fork: every clone
 * would print those, and the tests below would see the template's values.
 */
static void pause_between_ticks(struct linux_vm *vm)
{
	char cli[4096], *out;

	for (unsigned tries = 1;; tries++) {
		linux_cli(vm, "pause", cli, sizeof(cli), NULL);
		out = linux_slurp(vm->console);
		if (after_tick(out)) {
			free(out);
			return;
		}
		free(out);
		cr_assert(tries < 20, "the template was inside a draw at each of %u pauses", tries);
		linux_cli(vm, "resume", cli, sizeof(cli), NULL);
		out = linux_wait_for(vm, vm->console, after_tick, 60);
		free(out);
	}
}

/* Boot the template to its first tick, pause it and fork count clones (ids 1..count). */
static void template_forked(struct linux_vm *vm, const char *cmdline, unsigned count)
{
	char *kernel = linux_small_kernel(), *out, cli[4096], n[16];
	char *reseed = strdup(harness_build_path("linux/reseed"));
	const char *files[] = { reseed, NULL };

	linux_start_files(vm, kernel, tick_init, files, cmdline, NULL);
	free(reseed);
	out = linux_wait_for(vm, vm->console, has_tick, 240);
	cr_assert(has_tick(out), "the template never ticked; its console ends:\n%s",
		  out + (strlen(out) > 3000 ? strlen(out) - 3000 : 0));
	cr_log_info("template: %.200s", strstr(out, "vm-fork-init"));
	/* The control keeps the driver out by its command line; every other template has it. */
	cr_assert(strstr(out, cmdline ? "vmgenid driver: 0" : "vmgenid driver: 1"),
		  "Linux's VMGenID driver is %s", cmdline ? "bound" : "not bound");
	free(out);
	pause_between_ticks(vm);
	snprintf(n, sizeof(n), "%u", count);
	linux_cli(vm, "fork", cli, sizeof(cli), "--count", n, NULL);
	free(kernel);
}

/* Each clone's first tick after it resumed. */
static void clone_ticks(struct linux_vm *vm, struct tick *ticks, unsigned count)
{
	char path[128], *out;

	for (unsigned id = 1; id <= count; id++) {
		linux_console_path(vm, id, path, sizeof(path));
		out = linux_wait_for(vm, path, has_tick, 120);
		cr_assert(first_tick(out, &ticks[id - 1]), "clone %u never ticked:\n%.2000s", id, out);
		free(out);
	}
}

static unsigned duplicates(const struct tick *ticks, unsigned count)
{
	unsigned dups = 0;

	for (unsigned i = 0; i < count; i++)
		for (unsigned j = i + 1; j < count; j++)
			dups += !strcmp(ticks[i].random, ticks[j].random);
	return dups;
}

static void forked_random(const char *cmdline, struct tick *ticks)
{
	struct linux_vm vm;

	template_forked(&vm, cmdline, NCLONES);
	clone_ticks(&vm, ticks, NCLONES);
	for (unsigned i = 0; i < NCLONES; i++)
		cr_log_info("clone %u: %s", i + 1, ticks[i].random);
	linux_stop(&vm);
}

Test(linux_identity, clones_draw_different_random, .timeout = 150)
{
	struct tick ticks[NCLONES];

	forked_random(NULL, ticks);
	cr_expect_eq(duplicates(ticks, NCLONES), 0,
		     "clones shared /dev/urandom output right after the fork: VMGenID did not reseed them");
}

/* The control: with Linux's VMGenID driver kept from loading, clones do share their CRNG. */
Test(linux_identity, without_vmgenid_clones_repeat, .timeout = 150)
{
	struct tick ticks[NCLONES];

	forked_random("initcall_blacklist=vmgenid_driver_init settle=30", ticks);
	cr_expect_gt(duplicates(ticks, NCLONES), 0,
		     "without the guest's VMGenID driver the clones still drew different numbers:"
		     " the test above cannot tell VMGenID working from not");
}

/* Clone id's first tick, and the host's time when it was seen. */
static long long tick_seen(struct linux_vm *vm, unsigned id, struct tick *t)
{
	char path[128], *out;

	linux_console_path(vm, id, path, sizeof(path));
	out = linux_wait_for(vm, path, has_tick, 120);
	cr_assert(first_tick(out, t), "clone %u never ticked:\n%.2000s", id, out);
	free(out);
	return (long long)time(NULL);
}

/*
 * A paused template forked now and again 30 s later from the same capture
 * (a paused VM's capture is reused until it runs): both clones' wall clocks
 * are the host's. Without the catch-up, the second would be 30 s behind.
 */
Test(linux_identity, clones_clock_is_the_hosts, .timeout = 150)
{
	struct linux_vm vm;
	struct tick t;
	char cli[4096];
	long long forked = (long long)time(NULL), now;

	template_forked(&vm, NULL, 1);
	for (unsigned id = 1; id <= 2; id++) {
		if (id == 2) {
			sleep(30); /* the scenario itself: a template that stays paused */
			forked = (long long)time(NULL);
			linux_cli(&vm, "fork", cli, sizeof(cli), NULL);
		}
		now = tick_seen(&vm, id, &t);
		cr_log_info("clone %u: forked at %lld, guest date %lld, host %lld", id, forked, t.date,
			    now);
		/*
		 * Between the fork and the host seeing the tick, however slow the
		 * machine (date +%s truncates: the lower bound is a second early).
		 */
		cr_expect(t.date <= now && t.date >= forked - 1,
			  "clone %u's clock says %lld, forked at %lld, seen at %lld", id, t.date, forked,
			  now);
	}
	linux_stop(&vm);
}

static const char hwrng_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t devtmpfs dev /dev\n"
	"mount -t sysfs sys /sys\n"
	"echo \"hwrng: $(cat /sys/class/misc/hw_random/rng_current)"
	" $(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n') end\"\n"
	"poweroff -f\n";

static bool hwrng_line(const char *out)
{
	return strstr(out, "hwrng: ") && strstr(strstr(out, "hwrng: "), " end");
}

/* virtio-rng through ACPI: Linux's hw_random core picks it, and /dev/hwrng gives bytes. */
Test(linux_identity, virtio_rng_feeds_dev_hwrng, .timeout = 300)
{
	const char *extra[] = { "--rng", NULL };
	char *kernel = linux_small_kernel(), *out, source[64], hex[65];
	struct linux_vm vm;

	linux_start(&vm, kernel, hwrng_init, NULL, extra);
	out = linux_wait_for(&vm, vm.console, hwrng_line, 240);
	cr_assert(hwrng_line(out), "no hwrng line:\n%s", out + (strlen(out) > 3000 ? strlen(out) - 3000 : 0));
	cr_assert_eq(sscanf(strstr(out, "hwrng: "), "hwrng: %63s %64[0-9a-f] end", source, hex), 2,
		     "%.200s", strstr(out, "hwrng: "));
	cr_expect_str_eq(source, "virtio_rng.0", "the guest's hwrng is %s", source);
	cr_expect_eq(strlen(hex), 64, "%s", hex);
	cr_expect(strspn(hex, "0") < 16, "/dev/hwrng gave zeros: %s", hex);
	free(out);
	free(kernel);
	linux_stop(&vm);
}
