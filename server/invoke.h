/*
 * One invocation of a function (the serverless pool): fork the paused
 * template into one clone, deliver the body to the clone's vsock service
 * (server/vsock_call.h), take its answer, and remove the clone whatever
 * happened. A clone serves one request and never another: nothing of one
 * request can reach the next.
 */
#ifndef SERVER_INVOKE_H
#define SERVER_INVOKE_H

#include <stddef.h>
#include <stdint.h>

struct vm;

struct invoke_request {
	struct vm *template;       /* paused, registered in its vmm, with vsock on */
	unsigned port;             /* the guest's function port */
	const void *body;
	size_t len;
	unsigned timeout_ms;
	size_t max_answer;
};

struct invoke_result {
	uint64_t clone_id;
	char *answer;              /* malloc'd, NUL-terminated; NULL on failure */
	size_t len;
	uint64_t fork_ns;          /* the fork: the clone runs */
	uint64_t answer_ns;        /* from then to the answer's end */
	int stage_failed;          /* 0, or INVOKE_FORK / INVOKE_ANSWER: where the error came from */
};

enum { INVOKE_FORK = 1, INVOKE_ANSWER = 2 };

/*
 * 0 with the answer in r, or a negative errno: the fork's (-EDQUOT over the
 * VMM's limits, -EINVAL when the template is not paused or has no vsock) or
 * vsock_call()'s. The clone is gone when it returns.
 */
int invoke(const struct invoke_request *rq, struct invoke_result *r);

#endif
