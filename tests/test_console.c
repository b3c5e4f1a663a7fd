/* The host console: output to fds, files and socket clients; input from sockets and a tty. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/console.h"

/* What the input thread delivered; rx takes at most `limit` bytes per call when set. */
struct con_sink {
	pthread_mutex_t lock;
	uint8_t buf[256];
	size_t len, limit;
	unsigned quits;
};

static size_t sink_rx(void *opaque, const uint8_t *buf, size_t len)
{
	struct con_sink *s = opaque;

	pthread_mutex_lock(&s->lock);
	if (s->limit && len > s->limit)
		len = s->limit;
	if (len > sizeof(s->buf) - s->len)
		len = sizeof(s->buf) - s->len;
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	pthread_mutex_unlock(&s->lock);
	return len;
}

static void sink_quit(void *opaque)
{
	struct con_sink *s = opaque;

	pthread_mutex_lock(&s->lock);
	s->quits++;
	pthread_mutex_unlock(&s->lock);
}

/* Wait up to 2 s for the sink to hold n bytes (and quits >= q). */
static bool sink_wait(struct con_sink *s, size_t n, unsigned q)
{
	for (int i = 0; i < 2000; i++) {
		bool done;

		pthread_mutex_lock(&s->lock);
		done = s->len >= n && s->quits >= q;
		pthread_mutex_unlock(&s->lock);
		if (done)
			return true;
		usleep(1000);
	}
	return false;
}

/* Read exactly n bytes within 2 s, or fewer at EOF; returns the count. */
static size_t read_timeout(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 2000) <= 0)
			break;
		r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static char *con_tmpdir(void)
{
	static char dir[64];

	strcpy(dir, "/tmp/vmfork-console-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

/* Remove path (if still there) and the temporary directory holding it. */
static void con_cleanup(const char *path)
{
	char dir[128];

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	unlink(path);
	cr_assert_eq(rmdir(dir), 0, "rmdir %s: %s", dir, strerror(errno));
}

static int connect_client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

static void sink_init(struct con_sink *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

Test(console, fd_output)
{
	struct console *c;
	char spec[32], buf[8] = { 0 };
	int p[2];

	cr_assert_eq(pipe(p), 0);
	snprintf(spec, sizeof(spec), "fd:%d", p[1]);
	cr_assert_eq(console_open(&c, spec), 0);
	console_write(c, (const uint8_t *)"abc", 3);
	console_close(c);
	/* The console wrote through its own dup: our p[1] is still open. */
	cr_assert_eq(write(p[1], "d", 1), 1);
	cr_assert_eq(read_timeout(p[0], buf, 4), 4);
	cr_assert_str_eq(buf, "abcd");
	close(p[0]);
	close(p[1]);
}

Test(console, file_output_appends)
{
	char path[128], spec[160], buf[32] = { 0 };
	struct console *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/out.txt", con_tmpdir());
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("old|", f);
	fclose(f);
	snprintf(spec, sizeof(spec), "file:%s", path);
	cr_assert_eq(console_open(&c, spec), 0);
	console_write(c, (const uint8_t *)"new", 3);
	console_write(c, (const uint8_t *)"er", 2);
	console_close(c);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(fread(buf, 1, sizeof(buf) - 1, f), 9);
	fclose(f);
	cr_assert_str_eq(buf, "old|newer");
	con_cleanup(path);
}

Test(console, none_and_no_input)
{
	struct console *c;
	struct con_sink s;
	char path[128], spec[160];

	sink_init(&s);
	cr_assert_eq(console_open(&c, "none"), 0);
	console_write(c, (const uint8_t *)"x", 1);
	cr_assert_eq(console_start_input(c, sink_rx, NULL, &s), 0);
	console_close(c);
	snprintf(path, sizeof(path), "%s/f", con_tmpdir());
	snprintf(spec, sizeof(spec), "file:%s", path);
	cr_assert_eq(console_open(&c, spec), 0);
	cr_assert_eq(console_start_input(c, sink_rx, NULL, &s), 0);
	console_close(c);
	console_close(NULL);
	con_cleanup(path);
}

Test(console, bad_specs)
{
	static const char *const bad[] = {
		"bogus", "stdio:", "file:", "socket:", "fd:", "fd:abc", "fd:-1", "fd:3x",
		"fd:99999999999", "FILE:/tmp/x", "nonee",
	};
	struct console *c = NULL;
	char path[256];
	FILE *f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(console_open(&c, bad[i]), -EINVAL, "spec '%s'", bad[i]);
	cr_assert_null(c);
	/* A well-formed fd that is not open. */
	cr_assert_eq(console_open(&c, "fd:1000000"), -EBADF);
	/* A socket path longer than sun_path. */
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	memcpy(path, "socket:/", 8);
	cr_assert_eq(console_open(&c, path), -EINVAL);
	/* A file that is not a socket is never unlinked. */
	snprintf(path, sizeof(path), "%s/plain", con_tmpdir());
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	char spec[300];

	snprintf(spec, sizeof(spec), "socket:%s", path);
	cr_assert_eq(console_open(&c, spec), -EEXIST);
	cr_assert_eq(access(path, F_OK), 0);
	cr_assert_null(c);
	con_cleanup(path);
}

static struct console *open_socket_console(char *path, size_t size, struct con_sink *s)
{
	struct console *c;
	char spec[160];

	snprintf(path, size, "%s/con.sock", con_tmpdir());
	snprintf(spec, sizeof(spec), "socket:%s", path);
	cr_assert_eq(console_open(&c, spec), 0);
	cr_assert_eq(console_start_input(c, sink_rx, sink_quit, s), 0);
	cr_assert_eq(console_start_input(c, sink_rx, sink_quit, s), -EBUSY);
	return c;
}

Test(console, socket_client_io)
{
	struct con_sink s;
	struct console *c;
	char path[128], buf[8] = { 0 };
	int fd, other;

	sink_init(&s);
	c = open_socket_console(path, sizeof(path), &s);
	fd = connect_client(path);
	/* Input reaching rx also proves the client was accepted. */
	cr_assert_eq(write(fd, "in\x01x", 4), 4);
	cr_assert(sink_wait(&s, 4, 0));
	cr_assert_eq(memcmp(s.buf, "in\x01x", 4), 0, "no escapes on a socket");
	cr_assert_eq(s.quits, 0);
	console_write(c, (const uint8_t *)"out", 3);
	cr_assert_eq(read_timeout(fd, buf, 3), 3);
	cr_assert_str_eq(buf, "out");
	/* A second client is turned away while the first is connected. */
	other = connect_client(path);
	cr_assert_eq(read_timeout(other, buf, 1), 0);
	close(other);
	close(fd);
	console_close(c);
	cr_assert_neq(access(path, F_OK), 0, "the socket file is removed on close");
	con_cleanup(path);
}

Test(console, socket_partial_rx_keeps_input)
{
	static const char msg[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	struct con_sink s;
	struct console *c;
	char path[128];
	int fd;

	sink_init(&s);
	s.limit = 3;
	c = open_socket_console(path, sizeof(path), &s);
	fd = connect_client(path);
	cr_assert_eq(write(fd, msg, sizeof(msg) - 1), (ssize_t)sizeof(msg) - 1);
	cr_assert(sink_wait(&s, sizeof(msg) - 1, 0));
	cr_assert_eq(memcmp(s.buf, msg, sizeof(msg) - 1), 0);
	close(fd);
	console_close(c);
	con_cleanup(path);
}

Test(console, socket_reconnect_and_stale_file)
{
	struct con_sink s;
	struct console *c;
	char path[128], buf[4] = { 0 };
	int fd;

	sink_init(&s);
	c = open_socket_console(path, sizeof(path), &s);
	fd = connect_client(path);
	cr_assert_eq(write(fd, "a", 1), 1);
	cr_assert(sink_wait(&s, 1, 0));
	close(fd);
	/* The gone client is dropped; output meanwhile is dropped, not fatal. */
	console_write(c, (const uint8_t *)"lost", 4);
	fd = connect_client(path);
	cr_assert_eq(write(fd, "b", 1), 1);
	cr_assert(sink_wait(&s, 2, 0));
	console_write(c, (const uint8_t *)"ok", 2);
	cr_assert_eq(read_timeout(fd, buf, 2), 2);
	cr_assert_str_eq(buf, "ok");
	close(fd);
	console_close(c);

	/* A socket file nobody listens on is stale: a new console replaces it. */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	char spec[160];

	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(lfd);
	snprintf(spec, sizeof(spec), "socket:%s", path);
	cr_assert_eq(console_open(&c, spec), 0);
	console_close(c);
	con_cleanup(path);
}

Test(console, slow_client_is_dropped, .timeout = 20)
{
	static uint8_t chunk[65536];
	struct con_sink s;
	struct console *c;
	struct timespec t0, t1;
	char path[128], buf[4096];
	int fd;

	sink_init(&s);
	c = open_socket_console(path, sizeof(path), &s);
	fd = connect_client(path);
	cr_assert_eq(write(fd, "a", 1), 1);
	cr_assert(sink_wait(&s, 1, 0));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The client never reads: far more than any socket buffer. */
	for (int i = 0; i < 256; i++)
		console_write(c, chunk, sizeof(chunk));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 5, "console_write blocked on a stuck client");
	/* The client sees what fit, then EOF. */
	while (read_timeout(fd, buf, sizeof(buf)) == sizeof(buf))
		;
	cr_assert_eq(read_timeout(fd, buf, 1), 0);
	close(fd);
	console_close(c);
	con_cleanup(path);
}

Test(console, tty_escapes_and_raw_mode)
{
	struct con_sink s;
	struct console *c;
	struct termios tio;
	int master, slave;

	sink_init(&s);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	cr_assert_geq(slave, 0);
	/* Each Criterion test runs in its own process: its stdin is ours to replace. */
	cr_assert_eq(dup2(slave, STDIN_FILENO), STDIN_FILENO);
	cr_assert_eq(console_open(&c, NULL), 0);
	cr_assert_eq(console_start_input(c, sink_rx, sink_quit, &s), 0);
	cr_assert_eq(tcgetattr(STDIN_FILENO, &tio), 0);
	cr_assert_eq(tio.c_lflag & (ICANON | ECHO | ISIG), 0, "terminal not raw");
	cr_assert_eq(write(master, "a\x01\x01" "b\x01q\x03", 7), 7);
	cr_assert(sink_wait(&s, 4, 0));
	cr_assert_eq(memcmp(s.buf, "a\x01" "b\x03", 4), 0);
	cr_assert_eq(write(master, "\x01", 1), 1);
	usleep(20000);
	cr_assert_eq(write(master, "x", 1), 1);
	cr_assert(sink_wait(&s, 4, 1), "Ctrl-A x split over two reads must quit");
	cr_assert_eq(s.len, 4);
	console_close(c);
	cr_assert_eq(tcgetattr(STDIN_FILENO, &tio), 0);
	cr_assert_neq(tio.c_lflag & ICANON, 0, "terminal not restored");
	close(slave);
	close(master);
}
