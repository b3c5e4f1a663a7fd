/* Running test guests and the vm-fork command from tests. */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

/* Why KVM tests cannot run here, or NULL when /dev/kvm is usable. */
const char *harness_kvm_unusable(void);
/* A line for whoever runs the tests, "[NOTE] suite::test: ...", shown as the run goes. */
void harness_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A seed for rand(): VMFORK_TEST_SEED or a new one, printed so a failure can be replayed. */
unsigned harness_seed(void);
/*
 * How many times longer than on hardware KVM a wait for a guest may take: 3
 * under QEMU's TCG (tools/with-kvm.sh says so in VMFORK_KVM_KIND), where an
 * emulated CPU runs every guest of a run; else 1. Test timeouts are scaled too.
 */
unsigned harness_time_scale(void);
/* secs for a wait on a guest, scaled by harness_time_scale(). */
unsigned harness_wait_s(unsigned secs);
/* True on a nested host whose guest CPL0 code is emulated (kvm_pvm): slower. */
bool harness_slow_host(void);

#define SKIP_WITHOUT_KVM()                                                        \
	do {                                                                      \
		const char *why_ = harness_kvm_unusable();                        \
		if (why_)                                                         \
			cr_skip_test("skipped: %s", why_);                        \
	} while (0)

struct guest_opts {
	const char *cmdline;
	unsigned ncpus;        /* 0: 1 */
	uint64_t mem;          /* 0: 64 MiB */
	unsigned timeout_s;    /* 0: 30 */
	const char *cpuid_mask;
	struct device_config devices; /* optional devices turned on (core/device.h) */
};

struct guest_result {
	int ret;               /* vm_create/vm_boot/vm_start result */
	enum vm_stop_reason reason;
	int status;
	bool timed_out;
	unsigned nreports;
	uint64_t reports[VM_MAX_REPORTS];
	char console[64 * 1024]; /* NUL-terminated, cut if longer */
};

/* A path under the build directory, e.g. harness_build_path("guest/hello.elf"); the
 * buffer is reused by the next call. */
const char *harness_build_path(const char *rel);
/* Boot build/guest/NAME.elf in this process and run it to the end. */
void harness_run_guest(const char *name, const struct guest_opts *opts, struct guest_result *res);
/* Run argv (argv[0] under the build dir if relative), collect stdout+stderr; returns the exit status, -1 on a timeout. */
int harness_run_cli(char *const argv[], char *out, size_t out_size, unsigned timeout_s);

/* Whether the file's first 64 KiB hold text (a guest's console, say); false if it cannot be read. */
bool harness_file_has(const char *path, const char *text);
/*
 * Poll path (every 2 ms) until it has text: true; false once process pid has
 * ended or secs (scaled) have passed without it.
 */
bool harness_wait_file(const char *path, const char *text, pid_t pid, unsigned secs);
/* pid's wait status once it ends; after secs (scaled) it is killed first. */
int harness_wait_pid(pid_t pid, unsigned secs);
/* PUT path with body (JSON) on a VMM's API socket, in-process: the HTTP status, 0 for none. */
long harness_api_put(const char *sock, const char *path, const char *body);

/* Open file descriptors of this process, and its resident set in KiB. */

/* The UART's and the i8042's state in a snapshot (by their place in the device table). */
struct vm_snapshot;
struct uart_state *harness_uart_state(struct vm_snapshot *snap);
struct i8042_state *harness_i8042_state(struct vm_snapshot *snap);

#endif
