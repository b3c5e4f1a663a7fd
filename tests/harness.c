#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <criterion/hooks.h>
#include <criterion/internal/ordered-set.h>

#include "core/kvm.h"
#include "devices/i8042.h"
#include "devices/uart.h"
#include "fork/fork.h"
#include "state/vm_snapshot.h"
#include "tests/harness.h"

/* Opening it is the only test that counts: a KVM module may be loaded and refuse to bind. */
const char *harness_kvm_unusable(void)
{
	int fd;

	if (access("/dev/kvm", F_OK) != 0)
		return "/dev/kvm does not exist on this host (no KVM; make test runs in QEMU then)";
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return "/dev/kvm cannot be opened read-write by this user";
	close(fd);
	return NULL;
}

/* Not cr_log_warn: Criterion 2.4 then exits 1 from a run whose tests all passed. */
void harness_note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[NOTE] %s::%s: ", criterion_current_test->category,
		criterion_current_test->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

unsigned harness_seed(void)
{
	const char *env = getenv("VMFORK_TEST_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 0) : (unsigned)time(NULL) ^ (unsigned)getpid();

	harness_note("random seed %u (replay with VMFORK_TEST_SEED=%u)", seed, seed);
	return seed;
}

unsigned harness_time_scale(void)
{
	const char *kind = getenv("VMFORK_KVM_KIND");

	return kind && strstr(kind, "TCG") ? 3 : 1;
}

unsigned harness_wait_s(unsigned secs)
{
	return secs * harness_time_scale();
}

/* A test that declares no timeout: long enough for any that boots a guest or two. */
#define DEFAULT_TIMEOUT_S 60

/*
 * Before any test runs, in the runner: every test has a timeout (a hang then
 * fails one test instead of stalling the whole run), and timeouts, like the
 * waits, scale with the KVM. Criterion 2.4.1 enforced only one of two timeouts
 * of tests that ran at once (-j2); one job at a time, each is enforced.
 */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	unsigned scale = harness_time_scale();

	if (scale != 1)
		fprintf(stderr, "[NOTE] waits for guests and test timeouts are %u times longer here: %s\n",
			scale, getenv("VMFORK_KVM_KIND"));
	FOREACH_SET(struct criterion_suite_set *s, set->suites) {
		double suite = s->suite.data ? s->suite.data->timeout : 0;

		FOREACH_SET(struct criterion_test *t, s->tests) {
			double own = t->data->timeout > 0 ? t->data->timeout : suite;

			t->data->timeout = (own > 0 ? own : DEFAULT_TIMEOUT_S) * scale;
		}
	}
}

bool harness_slow_host(void)
{
	struct stat st;

	return stat("/sys/module/kvm_pvm", &st) == 0;
}

const char *harness_build_path(const char *rel)
{
	static __thread char path[4096];

	snprintf(path, sizeof(path), "%s/%s", VMFORK_BUILD_DIR, rel);
	return path;
}

struct watchdog {
	struct vm *vm;
	unsigned timeout_s;
	bool fired;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	for (unsigned i = 0; i < w->timeout_s * 50u && !vm_stopping(w->vm); i++)
		nanosleep(&tick, NULL);
	if (!vm_stopping(w->vm)) {
		w->fired = true;
		vm_request_stop(w->vm, VM_STOP_REQUESTED, 124);
	}
	return NULL;
}

static void read_console(int fd, struct guest_result *res)
{
	ssize_t n = pread(fd, res->console, sizeof(res->console) - 1, 0);

	res->console[n > 0 ? n : 0] = '\0';
}

static void run_to_end(struct vm *vm, const struct guest_opts *o, struct guest_result *res)
{
	struct watchdog w = { .vm = vm, .timeout_s = harness_wait_s(o->timeout_s ? o->timeout_s : 30) };
	pthread_t t;

	res->ret = vm_start(vm);
	pthread_create(&t, NULL, watchdog_thread, &w);
	res->reason = vm_wait(vm);
	pthread_join(t, NULL);
	res->timed_out = w.fired;
	res->status = vm_exit_code(vm);
	res->nreports = vm_reports(vm, res->reports, VM_MAX_REPORTS);
}

void harness_run_guest(const char *name, const struct guest_opts *o, struct guest_result *res)
{
	char kernel[4096], console[32];
	int fd = memfd_create("guest-console", MFD_CLOEXEC);
	struct vm_config cfg = {
		.mem_size = o->mem ? o->mem : 64 * MiB,
		.ncpus = o->ncpus ? o->ncpus : 1,
		.console = console,
		.kernel = kernel,
		.cmdline = o->cmdline,
		.cpuid_mask = o->cpuid_mask,
		.devices = o->devices,
	};
	struct kvm_host kvm;
	struct vm *vm = NULL;

	memset(res, 0, sizeof(*res));
	snprintf(kernel, sizeof(kernel), "%s/guest/%s.elf", VMFORK_BUILD_DIR, name);
	snprintf(console, sizeof(console), "fd:%d", fd);
	res->ret = kvm_host_open(&kvm, NULL);
	if (res->ret < 0)
		goto out;
	res->ret = vm_create(&vm, &kvm, &cfg);
	if (!res->ret) {
		/* Outside a registry: its guest may mark and reset (a fork gets -EINVAL). */
		vm_attach_fork_engine(vm);
		res->ret = vm_boot(vm, &cfg);
	}
	if (!res->ret)
		run_to_end(vm, o, res);
	vm_destroy(vm);
	kvm_host_close(&kvm);
out:
	read_console(fd, res);
	close(fd);
}

static void child_exec(char *const argv[], int out_fd)
{
	char path[4096];

	dup2(out_fd, STDOUT_FILENO);
	dup2(out_fd, STDERR_FILENO);
	if (argv[0][0] == '/')
		snprintf(path, sizeof(path), "%s", argv[0]);
	else
		snprintf(path, sizeof(path), "%s/%s", VMFORK_BUILD_DIR, argv[0]);
	execv(path, argv);
	dprintf(STDERR_FILENO, "exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

int harness_run_cli(char *const argv[], char *out, size_t out_size, unsigned timeout_s)
{
	int fd = memfd_create("cli-output", MFD_CLOEXEC), status = 0;
	pid_t pid = fork();
	ssize_t n;

	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, STDIN_FILENO);
		child_exec(argv, fd);
	}
	timeout_s = harness_wait_s(timeout_s);
	for (unsigned i = 0; i < timeout_s * 50u; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(20000);
		if (i + 1 == timeout_s * 50u) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			status = -1;
		}
	}
	n = pread(fd, out, out_size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	if (status == -1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool harness_file_has(const char *path, const char *text)
{
	static char buf[64 * 1024];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return n && strstr(buf, text);
}

bool harness_wait_file(const char *path, const char *text, pid_t pid, unsigned secs)
{
	for (unsigned i = 0; i < harness_wait_s(secs) * 500; i++) {
		if (harness_file_has(path, text))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return harness_file_has(path, text);
		usleep(2000);
	}
	return false;
}

int harness_wait_pid(pid_t pid, unsigned secs)
{
	int status = -1;

	for (unsigned i = 0; i < harness_wait_s(secs) * 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return status;
}

static size_t drop_body(char *data, size_t size, size_t n, void *opaque)
{
	return size * n;
}

long harness_api_put(const char *sock, const char *path, const char *body)
{
	CURL *curl = curl_easy_init();
	char url[256];
	long status = 0;

	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, drop_body);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)harness_wait_s(30));
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	return status;
}

struct uart_state *harness_uart_state(struct vm_snapshot *snap)
{
	return (struct uart_state *)snap->devs[device_index(&uart_device)].bytes;
}

struct i8042_state *harness_i8042_state(struct vm_snapshot *snap)
{
	return (struct i8042_state *)snap->devs[device_index(&i8042_device)].bytes;
}
