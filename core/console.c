/*
 * The host side of the serial console. Output is written by whichever vCPU
 * thread transmits; input is read by one thread per console that polls its
 * sources and an eventfd that tells it to stop. The console lock guards the
 * output fds only, and is never held while rx or on_quit runs: vCPUs call
 * console_write() with the UART lock held while rx takes that same lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/console.h"
#include "core/log.h"

enum console_kind { CONSOLE_NONE, CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_FD, CONSOLE_SOCKET };

#define CONSOLE_BUF_SIZE   256
#define CONSOLE_RETRY_MS   10  /* rx was full: offer the rest again after this */
#define CONSOLE_SEND_MS    100 /* a socket client slower than this is dropped */
#define CTRL_A             0x01

struct console {
	enum console_kind kind;
	pthread_mutex_t lock;    /* out_fd, client_fd, client_dead */
	int out_fd;              /* stdio, file, fd: -1 when none or after an error */
	int in_fd;               /* stdio: a dup of stdin, or -1 */
	bool in_eof;
	int listen_fd, client_fd;
	bool client_dead;        /* a writer gave up on the client; the thread closes it */
	char *sock_path;
	int stop_fd;             /* eventfd: the input thread returns when it is readable */
	bool running;
	pthread_t thread;
	bool raw;                /* in_fd is a terminal we put in raw mode */
	struct termios saved_tio;
	console_rx_fn rx;
	void (*on_quit)(void *opaque);
	void *opaque;
	bool escape;             /* the last byte typed was Ctrl-A */
	uint8_t pend[CONSOLE_BUF_SIZE]; /* input rx has not taken yet */
	size_t pend_off, pend_len;
};

static const char console_help[] =
	"\r\nC-a x    exit\r\nC-a C-a  send C-a\r\nC-a h    this help\r\n";

/* ---- output ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is writable or the deadline (deadline < 0: none) passes. */
static int wait_writable(int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int timeout = -1;

	if (deadline >= 0) {
		int64_t left = deadline - now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		timeout = (int)left;
	}
	if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/*
 * Write all of buf. A socket is sent to without blocking and without SIGPIPE;
 * an fd that happens to be non-blocking is waited for.
 */
static int write_all(int fd, const uint8_t *buf, size_t len, bool sock, int64_t deadline)
{
	while (len) {
		ssize_t n = sock ? send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT)
				 : write(fd, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			int ret = wait_writable(fd, deadline);

			if (ret < 0)
				return ret;
		} else {
			return n < 0 ? -errno : -EIO;
		}
	}
	return 0;
}

static void socket_write(struct console *c, const uint8_t *buf, size_t len)
{
	int ret;

	if (c->client_fd < 0 || c->client_dead)
		return;
	ret = write_all(c->client_fd, buf, len, true, now_ms() + CONSOLE_SEND_MS);
	if (ret < 0) {
		pr_warn("console: dropping socket client: %s",
			ret == -ETIMEDOUT ? "it stopped reading" : strerror(-ret));
		/* The input thread owns the fd; shutdown makes its next read see EOF. */
		shutdown(c->client_fd, SHUT_RDWR);
		c->client_dead = true;
	}
}

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	if (c->kind == CONSOLE_SOCKET) {
		socket_write(c, buf, len);
	} else if (c->out_fd >= 0) {
		ret = write_all(c->out_fd, buf, len, false, -1);
		if (ret < 0) {
			pr_warn("console: output stopped: %s", strerror(-ret));
			close(c->out_fd);
			c->out_fd = -1;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- opening ---- */

static int dup_fd(int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3), err = -errno;

	if (nfd >= 0)
		return nfd;
	pr_err("console: fd %d: %s", fd, strerror(-err));
	return err;
}

static int open_stdio(struct console *c)
{
	c->kind = CONSOLE_STDIO;
	/* Closed stdin or stdout only means no input or no output. */
	c->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	c->in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
	return 0;
}

static int open_file(struct console *c, const char *path)
{
	c->kind = CONSOLE_FILE;
	c->out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
	if (c->out_fd < 0) {
		pr_err("console: cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int open_fd(struct console *c, const char *arg)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end || errno || n > INT_MAX) {
		pr_err("console: fd:%s: not a file descriptor number", arg);
		return -EINVAL;
	}
	c->kind = CONSOLE_FD;
	c->out_fd = dup_fd((int)n);
	return c->out_fd < 0 ? c->out_fd : 0;
}

/* Remove a socket file left by a VMM that is gone; refuse anything else at path. */
static int remove_stale_socket(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, live;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		pr_err("console: %s exists and is not a socket", sa->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	if (live) {
		pr_err("console: %s is in use by another process", sa->sun_path);
		return -EADDRINUSE;
	}
	return unlink(sa->sun_path) < 0 ? -errno : 0;
}

static int listen_socket(const struct sockaddr_un *sa)
{
	int fd, err;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 1) < 0) {
		err = -errno;
		pr_err("console: cannot listen on %s: %s", sa->sun_path, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static int open_socket(struct console *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	int ret;

	if (n == 0 || n >= sizeof(sa.sun_path)) {
		pr_err("console: socket path must be 1 to %zu bytes", sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, n);
	c->kind = CONSOLE_SOCKET;
	ret = remove_stale_socket(&sa);
	if (ret < 0)
		return ret;
	c->listen_fd = listen_socket(&sa);
	if (c->listen_fd < 0)
		return c->listen_fd;
	c->sock_path = strdup(path);
	if (!c->sock_path) {
		unlink(path);
		return -ENOMEM;
	}
	return 0;
}

static const char *spec_arg(const char *spec, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(spec, prefix, n) ? NULL : spec + n;
}

static int console_parse(struct console *c, const char *spec)
{
	const char *arg;

	if (!*spec || !strcmp(spec, "stdio"))
		return open_stdio(c);
	if (!strcmp(spec, "none"))
		return 0;
	if ((arg = spec_arg(spec, "file:")) && *arg)
		return open_file(c, arg);
	if ((arg = spec_arg(spec, "socket:")))
		return open_socket(c, arg);
	if ((arg = spec_arg(spec, "fd:")))
		return open_fd(c, arg);
	pr_err("console: bad spec '%s': use stdio, none, file:PATH, socket:PATH or fd:N", spec);
	return -EINVAL;
}

int console_open(struct console **out, const char *spec)
{
	struct console *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->kind = CONSOLE_NONE;
	c->out_fd = c->in_fd = c->listen_fd = c->client_fd = c->stop_fd = -1;
	ret = console_parse(c, spec ? spec : "stdio");
	if (ret < 0) {
		console_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* ---- input ---- */

/* Terminal input: handle the Ctrl-A escapes and keep the rest in pend. */
static bool filter_escapes(struct console *c, const uint8_t *in, size_t n)
{
	bool quit = false;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];

		if (!c->escape && b == CTRL_A) {
			c->escape = true;
			continue;
		}
		if (!c->escape) {
			c->pend[c->pend_len++] = b;
			continue;
		}
		c->escape = false;
		if (b == CTRL_A)
			c->pend[c->pend_len++] = b;
		else if (b == 'x' || b == 'X')
			quit = true;
		else if (b == 'h' || b == 'H' || b == '?')
			console_write(c, (const uint8_t *)console_help, sizeof(console_help) - 1);
		/* Any other escaped key is dropped, as QEMU does. */
	}
	return quit;
}

static void read_stdin(struct console *c)
{
	uint8_t buf[CONSOLE_BUF_SIZE];
	ssize_t n = read(c->in_fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		c->in_eof = true; /* EOF or a dead terminal: stop polling it */
		return;
	}
	c->pend_off = 0;
	c->pend_len = 0;
	if (!c->raw) {
		memcpy(c->pend, buf, (size_t)n);
		c->pend_len = (size_t)n;
	} else if (filter_escapes(c, buf, (size_t)n) && c->on_quit) {
		c->on_quit(c->opaque);
	}
}

static void close_client(struct console *c)
{
	pthread_mutex_lock(&c->lock);
	close(c->client_fd);
	c->client_fd = -1;
	c->client_dead = false;
	pthread_mutex_unlock(&c->lock);
}

/* A client a writer gave up on is closed here, by the thread that polls its fd. */
static void reap_dead_client(struct console *c)
{
	bool dead;

	pthread_mutex_lock(&c->lock);
	dead = c->client_dead;
	pthread_mutex_unlock(&c->lock);
	if (dead)
		close_client(c);
}

static void read_client(struct console *c)
{
	ssize_t n = recv(c->client_fd, c->pend, sizeof(c->pend), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close_client(c);
		return;
	}
	c->pend_off = 0;
	c->pend_len = (size_t)n;
}

static void accept_client(struct console *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (c->client_fd >= 0) {
		/* One client at a time: a second one is turned away. */
		close(fd);
		return;
	}
	pthread_mutex_lock(&c->lock);
	c->client_fd = fd;
	pthread_mutex_unlock(&c->lock);
}

static void deliver_pending(struct console *c)
{
	size_t n = c->rx(c->opaque, c->pend + c->pend_off, c->pend_len);

	if (n > c->pend_len)
		n = c->pend_len;
	c->pend_off += n;
	c->pend_len -= n;
}

static int add_poll(struct pollfd *pfd, int *n, int fd)
{
	pfd[*n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	return (*n)++;
}

/*
 * Wait for one round of input and handle it. While rx has not taken
 * everything, only wait a little and read nothing new. Returns false once
 * console_close() asks the thread to stop.
 */
static bool console_poll(struct console *c)
{
	struct pollfd pfd[3];
	int n = 0, in = -1, lis = -1, cli = -1;

	add_poll(pfd, &n, c->stop_fd);
	if (!c->pend_len && c->kind == CONSOLE_STDIO && !c->in_eof)
		in = add_poll(pfd, &n, c->in_fd);
	if (!c->pend_len && c->kind == CONSOLE_SOCKET) {
		lis = add_poll(pfd, &n, c->listen_fd);
		if (c->client_fd >= 0)
			cli = add_poll(pfd, &n, c->client_fd);
	}
	if (poll(pfd, (nfds_t)n, c->pend_len ? CONSOLE_RETRY_MS : -1) < 0)
		return errno == EINTR;
	if (pfd[0].revents)
		return false;
	if (in >= 0 && pfd[in].revents)
		read_stdin(c);
	if (cli >= 0 && pfd[cli].revents)
		read_client(c);
	if (lis >= 0 && pfd[lis].revents)
		accept_client(c);
	return true;
}

static void *console_thread(void *arg)
{
	struct console *c = arg;

	while (console_poll(c)) {
		if (c->kind == CONSOLE_SOCKET)
			reap_dead_client(c);
		if (c->pend_len)
			deliver_pending(c);
	}
	return NULL;
}

/* Raw input, but output processing stays on so host log lines still end in CR LF. */
static void terminal_raw(struct console *c)
{
	struct termios tio;

	if (!isatty(c->in_fd) || tcgetattr(c->in_fd, &c->saved_tio) < 0)
		return;
	tio = c->saved_tio;
	tio.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	tio.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	tio.c_cflag = (tio.c_cflag & ~(CSIZE | PARENB)) | CS8;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(c->in_fd, TCSANOW, &tio) == 0)
		c->raw = true;
}

int console_start_input(struct console *c, console_rx_fn rx, void (*on_quit)(void *opaque),
			void *opaque)
{
	int ret;

	if (!rx)
		return -EINVAL;
	if (c->running)
		return -EBUSY;
	if (c->kind != CONSOLE_SOCKET && (c->kind != CONSOLE_STDIO || c->in_fd < 0))
		return 0;
	c->rx = rx;
	c->on_quit = on_quit;
	c->opaque = opaque;
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_fd < 0)
		return -errno;
	if (c->kind == CONSOLE_STDIO)
		terminal_raw(c);
	ret = -pthread_create(&c->thread, NULL, console_thread, c);
	if (ret < 0) {
		pr_err("console: cannot start the input thread: %s", strerror(-ret));
		return ret; /* console_close() undoes the rest */
	}
	c->running = true;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void console_close(struct console *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	if (c->running) {
		while (write(c->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(c->thread, NULL);
	}
	if (c->raw)
		tcsetattr(c->in_fd, TCSANOW, &c->saved_tio);
	close_fd(&c->out_fd);
	close_fd(&c->in_fd);
	close_fd(&c->client_fd);
	close_fd(&c->listen_fd);
	close_fd(&c->stop_fd);
	if (c->sock_path)
		unlink(c->sock_path);
	free(c->sock_path);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
