/*
 * One request over a VM's hybrid vsock socket (server/vsock_call.h), against
 * a fake VMM side in a thread: the answer to EOF, refusals, a guest that
 * never answers, one that closes without answering, answers too long, and
 * a socket that speaks something else.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/vsock_call.h"

enum behaviour { ANSWER, REFUSE, HANG, SILENT, LONG, GARBAGE };

struct peer {
	int listen_fd;
	enum behaviour how;
	char body[256];            /* what the peer read after the OK */
	pthread_t thread;
};

static char sock_path[64];

static void line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
		n++;
	buf[n] = '\0';
}

static void *serve(void *arg)
{
	struct peer *p = arg;
	char cmd[64], big[9000];
	int fd = accept(p->listen_fd, NULL, NULL);
	ssize_t n, got = 0;

	if (fd < 0)
		return NULL;
	line(fd, cmd, sizeof(cmd));
	if (p->how == REFUSE || strcmp(cmd, "CONNECT 8080")) {
		close(fd);
		return NULL;
	}
	if (write(fd, p->how == GARBAGE ? "HELLO\n" : "OK 1073741824\n", p->how == GARBAGE ? 6 : 14) < 0)
		return NULL;
	while ((n = read(fd, p->body + got, sizeof(p->body) - 1 - (size_t)got)) > 0)
		got += n;
	p->body[got] = '\0';
	if (p->how == HANG)
		sleep(1);
	else if (p->how == ANSWER && write(fd, "the answer\n", 11) != 11)
		p->body[0] = '\0';
	memset(big, 'x', sizeof(big));
	if (p->how == LONG && write(fd, big, sizeof(big)) != (ssize_t)sizeof(big))
		p->body[0] = '\0';
	close(fd);
	return NULL;
}

static void start(struct peer *p, enum behaviour how)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(p, 0, sizeof(*p));
	p->how = how;
	snprintf(sock_path, sizeof(sock_path), "/tmp/vmf-vcall-%d.sock", getpid());
	unlink(sock_path);
	strcpy(sa.sun_path, sock_path);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(p->listen_fd >= 0 && bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		  listen(p->listen_fd, 4) == 0);
	cr_assert_eq(pthread_create(&p->thread, NULL, serve, p), 0);
}

static void finish(struct peer *p)
{
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	unlink(sock_path);
}

static int call(const char *body, unsigned timeout_ms, size_t max, char **answer, size_t *len)
{
	struct vsock_call c = { .path = sock_path, .port = 8080, .body = body, .len = strlen(body),
				.timeout_ms = timeout_ms, .max_answer = max };

	return vsock_call(&c, answer, len);
}

/* "ab" to a peer that answers "the answer\n", taking at most max bytes: the call's result. */
static int ask(size_t max, struct peer *p, char **answer, size_t *len)
{
	int ret;

	start(p, ANSWER);
	ret = call("ab", 5000, max, answer, len);
	finish(p);
	return ret;
}

Test(vsock_call, body_in_answer_out)
{
	struct peer p;
	char *answer;
	size_t len;

	cr_assert_eq(ask(4096, &p, &answer, &len), 0);
	cr_expect_str_eq(p.body, "ab", "the guest read '%s' up to EOF", p.body);
	cr_expect_eq(len, 11);
	cr_expect_str_eq(answer, "the answer\n");
	free(answer);
	cr_assert_eq(ask(11, &p, &answer, &len), 0, "an answer of exactly the limit");
	free(answer);
}

Test(vsock_call, failures_have_their_own_errors)
{
	static const struct { enum behaviour how; int err; } cases[] = {
		{ REFUSE, -ECONNREFUSED }, { HANG, -ETIMEDOUT }, { SILENT, -ENODATA },
		{ LONG, -EMSGSIZE }, { GARBAGE, -EPROTO },
	};
	struct peer p;
	char *answer = (char *)1;
	size_t len = 1;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start(&p, cases[i].how);
		cr_expect_eq(call("x", 500, 8192, &answer, &len), cases[i].err, "case %zu: %s", i,
			     vsock_call_error(cases[i].err));
		cr_expect_null(answer);
		cr_expect_eq(len, 0);
		finish(&p);
	}
	snprintf(sock_path, sizeof(sock_path), "/tmp/vmf-vcall-none-%d.sock", getpid());
	cr_expect_eq(call("x", 500, 8192, &answer, &len), -ENOENT);
	cr_expect_str_eq(vsock_call_error(-ENODATA), "the guest closed without answering");
}
