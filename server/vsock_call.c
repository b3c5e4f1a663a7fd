/* One request to a guest's vsock service (server/vsock_call.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "server/vsock_call.h"

#define OK_LINE_MAX 32

static int64_t now_ms(void)
{
	return (int64_t)(now_ns() / 1000000);
}

/* Wait for events on fd until the deadline: 0, or -ETIMEDOUT. */
static int wait_for(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int n;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	} while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -ETIMEDOUT;
}

static int open_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A Unix socket connects at once or fails: no EINPROGRESS to wait for. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno == EAGAIN ? -ECONNREFUSED : -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int ret = wait_for(fd, POLLOUT, deadline);

			if (ret < 0)
				return ret;
			continue;
		}
		if (n <= 0)
			return errno == EPIPE || errno == ECONNRESET ? -ENODATA : -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int grow(char **buf, size_t *cap, size_t max)
{
	size_t want = *cap ? *cap * 2 : 4096;
	char *grown;

	want = want > max ? max : want;
	grown = realloc(*buf, want + 1);
	if (!grown)
		return -ENOMEM;
	*buf = grown;
	*cap = want;
	return 0;
}

/* What comes, up to EOF, into *buf: at most max bytes (one more is -EMSGSIZE). */
static int read_to_eof(int fd, char **buf, size_t *len, size_t max, int64_t deadline)
{
	size_t cap = 0;
	char probe;

	for (;;) {
		char *dst = &probe;
		size_t room = 1;
		ssize_t n;

		if (*len < max) {
			if (*len == cap && grow(buf, &cap, max) < 0)
				return -ENOMEM;
			dst = *buf + *len;
			room = cap - *len;
		}
		n = recv(fd, dst, room, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n > 0 && dst == &probe)
			return -EMSGSIZE;
		if (n > 0) {
			*len += (size_t)n;
			(*buf)[*len] = '\0';
		} else if (errno != EAGAIN && errno != EINTR) {
			return -errno;
		} else if (wait_for(fd, POLLIN, deadline) < 0) {
			return -ETIMEDOUT;
		}
	}
}

/* "OK <hostport>\n", read a byte at a time so no byte of the answer is taken with it. */
static int read_ok(int fd, int64_t deadline)
{
	char line[OK_LINE_MAX];
	size_t n = 0;
	unsigned port;

	while (n + 1 < sizeof(line)) {
		ssize_t got = recv(fd, line + n, 1, 0);

		if (got == 1 && line[n] == '\n')
			break;
		if (got == 1) {
			n++;
		} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
			return -ECONNREFUSED; /* the VMM closes a connection the guest refused */
		} else if (wait_for(fd, POLLIN, deadline) < 0) {
			return -ETIMEDOUT;
		}
	}
	line[n] = '\0';
	return sscanf(line, "OK %u", &port) == 1 ? 0 : -EPROTO;
}

int vsock_call(const struct vsock_call *c, char **answer, size_t *answer_len)
{
	uint64_t start = now_ns();
	int64_t deadline = now_ms() + c->timeout_ms;
	char cmd[32];
	int fd = open_socket(c->path), ret;

	*answer = NULL;
	*answer_len = 0;
	if (fd < 0)
		return fd;
	snprintf(cmd, sizeof(cmd), "CONNECT %u\n", c->port);
	ret = send_all(fd, cmd, strlen(cmd), deadline);
	if (!ret)
		ret = read_ok(fd, deadline);
	if (!ret)
		ret = send_all(fd, c->body, c->len, deadline);
	if (!ret && shutdown(fd, SHUT_WR) < 0)
		ret = -errno;
	if (!ret && c->delivered_ns)
		*c->delivered_ns = now_ns() - start;
	if (!ret)
		ret = read_to_eof(fd, answer, answer_len, c->max_answer, deadline);
	if (!ret && !*answer_len)
		ret = -ENODATA;
	close(fd);
	if (ret < 0) {
		free(*answer);
		*answer = NULL;
		*answer_len = 0;
	}
	return ret;
}

const char *vsock_call_error(int err)
{
	switch (err) {
	case -ENOENT: return "the VM has no vsock socket";
	case -ECONNREFUSED: return "nothing listens on the guest's port";
	case -ETIMEDOUT: return "the guest did not answer in time";
	case -ENODATA: return "the guest closed without answering";
	case -EMSGSIZE: return "the guest's answer is too long";
	case -EPROTO: return "the VMM's vsock socket spoke no vsock protocol";
	default: return strerror(-err);
	}
}
