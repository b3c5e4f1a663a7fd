/*
 * virtio-vsock seen from Linux (the small kernel, ACPI, its virtio_vsock
 * driver), with a static server in the guest (guest/linux/vsock-echo.c):
 * it listens on port 1234 and answers each connection with the CID its
 * kernel holds and 8 random bytes drawn for that connection, then echoes.
 *
 * Why that answer tells clones apart honestly: the CID is what the clone's
 * own kernel read from the device after the TRANSPORT_RESET (3 + clone id),
 * so a right answer on clone k's socket says the host reached clone k's
 * guest and that guest took its reset; the random bytes come from the
 * clone's own CRNG after VMGenID reseeded it, so no two answers can be the
 * same process's memory replayed.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

#define NCLONES 16
#define PORT 1234

static const char echo_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sys /sys\n"
	"mount -t devtmpfs dev /dev\n"
	"/bin/vsock-echo 1234 &\n"
	"while :; do sleep 10; done\n";

static bool listening(const char *out)
{
	return strstr(out, "vsock-echo: listening") || strstr(out, "vsock-echo: cannot");
}

static bool reset_seen(const char *out)
{
	return strstr(out, "ended: Connection reset by peer");
}

/* A VM of the test and the folder of its vsock sockets: --vsock DIR/v%u.sock. */
struct vsock_vm {
	struct linux_vm vm;
	char dir[64];
};

/* VM id's socket: clone k listens on DIR/v<k>.sock, the booted VM (id 0) on DIR/v0.sock. */
static void sock_path(const struct vsock_vm *v, unsigned id, char *out, size_t len)
{
	snprintf(out, len, "%s/v%u.sock", v->dir, id);
}

struct answer {
	unsigned cid, host_port;
	char rnd[17];
};

/* Connect to the guest's PORT through VM id's socket: the fd, with the server's answer in *a. */
static int ask(const struct vsock_vm *vm, unsigned id, struct answer *a)
{
	char path[100], line[128];
	int fd;

	sock_path(vm, id, path, sizeof(path));
	fd = linux_unix_connect(path);
	cr_assert_eq(write(fd, "CONNECT 1234\n", 13), 13);
	linux_read_line(fd, line, sizeof(line));
	cr_assert_eq(sscanf(line, "OK %u", &a->host_port), 1, "VM %u: '%s' to CONNECT", id, line);
	linux_read_line(fd, line, sizeof(line));
	cr_assert_eq(sscanf(line, "cid=%u rnd=%16[0-9a-f]", &a->cid, a->rnd), 2,
		     "VM %u: the server said '%s'", id, line);
	return fd;
}

static void expect_echo(int fd, const char *text, unsigned id)
{
	char line[128];

	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	linux_read_line(fd, line, sizeof(line));
	cr_expect_eq(strncmp(line, text, strlen(text) - 1), 0, "VM %u echoed '%s'", id, line);
}

static void boot(struct vsock_vm *v, const char *kernel)
{
	char *echo = strdup(harness_build_path("linux/vsock-echo")), arg[128], *out;
	const char *files[] = { echo, NULL }, *extra[] = { "--vsock", arg, NULL };

	if (access(echo, X_OK) != 0)
		cr_skip_test("skipped: no build/linux/vsock-echo (make)");
	strcpy(v->dir, "/tmp/vm-fork-vsock-XXXXXX");
	cr_assert(mkdtemp(v->dir));
	snprintf(arg, sizeof(arg), "%s/v%%u.sock", v->dir);
	linux_start_files(&v->vm, kernel, echo_init, files, NULL, extra);
	free(echo);
	out = linux_wait_for(&v->vm, v->vm.console, listening, 240);
	cr_assert(strstr(out, "vsock-echo: listening on port 1234, cid 3"),
		  "the guest's server is not up; its console ends:\n%s", linux_tail(out));
	free(out);
}

static void stop(struct vsock_vm *v)
{
	char cmd[128];

	linux_stop(&v->vm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", v->dir);
	cr_expect_eq(system(cmd), 0);
}

static unsigned same_random(const struct answer *a, unsigned n)
{
	unsigned dups = 0;

	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			dups += !strcmp(a[i].rnd, a[j].rnd);
	return dups;
}

/* Clone k's console says the connection open at the fork was reset there: its host port. */
static unsigned reset_port(struct vsock_vm *v, unsigned id)
{
	char path[128], *out, *line;
	unsigned port = 0;

	linux_console_path(&v->vm, id, path, sizeof(path));
	out = linux_wait_for(&v->vm, path, reset_seen, 120);
	line = strstr(out, "vsock-echo: peer ");
	cr_expect(line && reset_seen(out) && sscanf(line, "vsock-echo: peer %u", &port) == 1,
		  "clone %u: no reset of the old connection:\n%s", id, linux_tail(out));
	free(out);
	return port;
}

/*
 * The host talks to the parent, which is paused and forked into 16 clones:
 * each clone's socket reaches that clone's own guest (its CID 3 + k, its own
 * random bytes, its echo); the connection open at the fork is reset inside
 * every clone and goes on in the parent, which also takes new ones.
 */
Test(linux_vsock, sixteen_clones_answer_for_themselves, .timeout = 150)
{
	char *kernel = linux_small_kernel(), cli[4096], count[8], text[64], *out;
	struct answer answers[NCLONES + 2], *a = answers;
	struct vsock_vm v;
	int open_fd, fd;

	boot(&v, kernel);
	open_fd = ask(&v, 0, &answers[0]);
	cr_expect_eq(answers[0].cid, 3);
	expect_echo(open_fd, "before the fork\n", 0);
	linux_cli(&v.vm, "pause", cli, sizeof(cli), NULL);
	snprintf(count, sizeof(count), "%u", NCLONES);
	linux_cli(&v.vm, "fork", cli, sizeof(cli), "--count", count, NULL);
	for (unsigned id = 1; id <= NCLONES; id++) {
		fd = ask(&v, id, &a[id]);
		cr_expect_eq(a[id].cid, 3 + id, "clone %u's guest says it has CID %u", id, a[id].cid);
		snprintf(text, sizeof(text), "hello clone %u\n", id);
		expect_echo(fd, text, id);
		close(fd);
		cr_log_info("clone %u: cid %u rnd %s", id, a[id].cid, a[id].rnd);
	}
	for (unsigned id = 1; id <= NCLONES; id++)
		cr_expect_eq(reset_port(&v, id), answers[0].host_port,
			     "clone %u reset another connection than the one open at the fork", id);
	linux_cli(&v.vm, "resume", cli, sizeof(cli), NULL);
	expect_echo(open_fd, "after the fork\n", 0);
	fd = ask(&v, 0, &answers[NCLONES + 1]);
	cr_expect_eq(answers[NCLONES + 1].cid, 3, "the parent keeps its CID");
	expect_echo(fd, "a new one\n", 0);
	close(fd);
	cr_expect_eq(same_random(answers, NCLONES + 2), 0, "two answers drew the same random bytes");
	out = linux_slurp(v.vm.console);
	cr_expect(!reset_seen(out), "the parent's connection was reset:\n%s", linux_tail(out));
	free(out);
	close(open_fd);
	free(kernel);
	stop(&v);
}

/* The guest connects out: port 5000 reaches DIR/v0.sock_5000; nothing listens for 5001. */
static const char client_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t devtmpfs dev /dev\n"
	"/bin/vsock-echo -c 5000 'hello host'\n"
	"/bin/vsock-echo -c 5001 'anyone?'\n"
	"echo 'vsock-echo: client done'\n"
	"poweroff -f\n";

static bool client_done(const char *out)
{
	return strstr(out, "vsock-echo: client done");
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0);
	return fd;
}

/* A host service the guest reaches: it reads a line and answers; in a thread of the test. */
static void *serve_once(void *arg)
{
	int svc = *(int *)arg, fd = accept(svc, NULL, NULL);
	char line[64];

	if (fd < 0)
		return NULL;
	linux_read_line(fd, line, sizeof(line));
	if (!strcmp(line, "hello host") && write(fd, "hello guest\n", 12) != 12)
		line[0] = '\0';
	close(fd);
	return NULL;
}

Test(linux_vsock, guest_reaches_host_socket, .timeout = 150)
{
	char *kernel = linux_small_kernel(), path[100], arg[128], *out;
	char *echo = strdup(harness_build_path("linux/vsock-echo"));
	const char *extra[] = { "--vsock", arg, NULL }, *files[] = { echo, NULL };
	struct vsock_vm v;
	pthread_t t;
	int svc;

	strcpy(v.dir, "/tmp/vm-fork-vsock-XXXXXX");
	cr_assert(mkdtemp(v.dir));
	snprintf(arg, sizeof(arg), "%s/v%%u.sock", v.dir);
	snprintf(path, sizeof(path), "%s/v0.sock_5000", v.dir);
	svc = unix_listen(path);
	cr_assert_eq(pthread_create(&t, NULL, serve_once, &svc), 0);
	if (access(echo, X_OK) != 0)
		cr_skip_test("skipped: no build/linux/vsock-echo (make)");
	linux_start_files(&v.vm, kernel, client_init, files, NULL, extra);
	free(echo);
	out = linux_wait_for(&v.vm, v.vm.console, client_done, 240);
	cr_expect(strstr(out, "vsock-echo: host 5000 said: hello guest"), "%s", linux_tail(out));
	cr_expect(strstr(out, "vsock-echo: connect 5001: Connection reset by peer"), "%s", linux_tail(out));
	cr_expect_eq(linux_wait_exit(&v.vm, 60), 0);
	shutdown(svc, SHUT_RDWR);
	pthread_join(t, NULL);
	close(svc);
	free(out);
	free(kernel);
	stop(&v);
}
