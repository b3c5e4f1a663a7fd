/* A client of the control API: see tools/api_client.h. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/api_client.h"

#define REPLY_MAX (64u << 20)       /* a list of thousands of VMs fits easily */
#define CONNECT_TIMEOUT_S 5L
#define REQUEST_TIMEOUT_S 600L      /* a fork into thousands of clones takes a while */

static size_t on_data(char *data, size_t size, size_t n, void *opaque)
{
	struct reply *r = opaque;
	size_t len = size * n;
	char *grown;

	if (len > REPLY_MAX - r->len)
		return 0; /* curl fails the transfer */
	grown = realloc(r->body, r->len + len + 1);
	if (!grown)
		return 0;
	r->body = grown;
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

static bool socket_exists(const char *cmd, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "vm-fork %s: no API socket at %s: %s (is a VMM serving its API there?)\n",
			cmd, path, strerror(errno));
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "vm-fork %s: %s is not a socket\n", cmd, path);
		return false;
	}
	return true;
}

static CURLcode perform(CURL *curl, const char *sock, const char *method, const char *path,
			const char *body, struct reply *r, char *err)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	char url[256];
	CURLcode rc;

	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "GET")) { /* PUT and DELETE: a body, maybe empty, with its length */
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	return rc;
}

int api_request(const char *cmd, const char *sock, const char *method, const char *path,
		       const char *body, struct reply *r)
{
	char err[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	CURL *curl;

	memset(r, 0, sizeof(*r));
	if (!socket_exists(cmd, sock))
		return -1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(curl = curl_easy_init())) {
		fprintf(stderr, "vm-fork %s: cannot initialize libcurl\n", cmd);
		return -1;
	}
	rc = perform(curl, sock, method, path, body, r, err);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	if (rc == CURLE_OK)
		return 0;
	if (rc == CURLE_COULDNT_CONNECT)
		fprintf(stderr, "vm-fork %s: cannot connect to %s: %s "
			"(a stale socket? is the VMM still running?)\n",
			cmd, sock, err[0] ? err : curl_easy_strerror(rc));
	else
		fprintf(stderr, "vm-fork %s: %s %s over %s failed: %s\n", cmd, method, path, sock,
			err[0] ? err : curl_easy_strerror(rc));
	free(r->body);
	r->body = NULL;
	return -1;
}

const char *str_of(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "?";
}

/* The answer as JSON when it is a success; else print the server's error and return NULL. */
json_t *parse_reply(const char *cmd, const struct reply *r)
{
	json_t *j = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;

	if (r->status >= 200 && r->status < 300 && (j || !r->len))
		return j ? j : json_object();
	if (j && json_string_value(json_object_get(j, "error")))
		fprintf(stderr, "vm-fork %s: %s\n", cmd, str_of(j, "error"));
	else
		fprintf(stderr, "vm-fork %s: the VMM answered HTTP %ld%s\n", cmd, r->status,
			j || !r->len ? "" : " with a body that is not JSON");
	json_decref(j);
	return NULL;
}

json_t *api_call_json(const char *cmd, const char *sock, const char *method, const char *path,
		      const char *body)
{
	struct reply r;
	json_t *j;

	if (api_request(cmd, sock, method, path, body, &r) < 0)
		return NULL;
	j = parse_reply(cmd, &r);
	free(r.body);
	return j;
}
