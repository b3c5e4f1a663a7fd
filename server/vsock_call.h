/*
 * One request to a guest's vsock service through its VM's hybrid vsock
 * socket (docs/vsock.md), as the serverless pool delivers an invocation:
 * connect to PATH, "CONNECT <port>\n", wait for "OK <hostport>\n", send the
 * body, half-close, and read the answer to EOF; all within one deadline.
 */
#ifndef SERVER_VSOCK_CALL_H
#define SERVER_VSOCK_CALL_H

#include <stddef.h>
#include <stdint.h>

struct vsock_call {
	const char *path;         /* the VM's vsock Unix socket */
	unsigned port;            /* the guest's listening port */
	const void *body;
	size_t len;
	unsigned timeout_ms;      /* for the whole call */
	size_t max_answer;        /* bytes; more is -EMSGSIZE */
	uint64_t *delivered_ns;   /* optional: set to the time from the start until the body was sent */
};

/*
 * 0 with the answer in *answer (malloc'd, NUL-terminated, *answer_len
 * bytes), or a negative errno: -ENOENT (no socket at path),
 * -ECONNREFUSED (nothing listens there, or the guest refused the port),
 * -ETIMEDOUT (the deadline passed), -ENODATA (the guest closed without an
 * answer), -EMSGSIZE (the answer is longer than max_answer), -EPROTO (the
 * VMM's reply to CONNECT was not "OK <n>"), or another errno of the socket.
 */
int vsock_call(const struct vsock_call *c, char **answer, size_t *answer_len);

/* A message for vsock_call()'s errors: "the guest closed without answering". */
const char *vsock_call_error(int err);

#endif
