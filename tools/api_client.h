/* A client of the control API (server/api.h): HTTP over its Unix socket, with libcurl. */
#ifndef TOOLS_API_CLIENT_H
#define TOOLS_API_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct reply {
	long status;
	char *body;
	size_t len;
};

/* One request; 0 with r filled in (any HTTP status), or -1 after saying why. */
int api_request(const char *cmd, const char *sock, const char *method, const char *path,
		const char *body, struct reply *r);
/* The answer as JSON when it is a success; else print the server's error and return NULL. */
json_t *parse_reply(const char *cmd, const struct reply *r);
/* The string at key, or "?". */
const char *str_of(json_t *obj, const char *key);
/* api_request + parse_reply: the answer, or NULL after saying why. */
json_t *api_call_json(const char *cmd, const char *sock, const char *method, const char *path,
		      const char *body);

#endif
