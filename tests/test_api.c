/*
 * The control API (server/api.h) on a VM running guest/wait_fork.c: every
 * endpoint through libcurl, bad requests, garbage on a raw socket, and the
 * CLI clients (tools/cmd_api.c) against the same server.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fork/vmm.h"
#include "server/api.h"
#include "state/vm_snapshot.h"
#include "tests/harness.h"
#include "tools/cli.h"
#include "vmm/vm.h"

static struct {
	struct vmm vmm;
	bool vmm_up;
	struct api_server *srv;
	char sock[80], console[80];
	char vsock[96];             /* --vsock for VM 0, or "" */
} env;

static struct {
	long status;
	char body[256 * 1024];
	size_t len;
	char allow[128];
	json_t *json;
} ans;

static char cli_out[64 * 1024];

/* ---- Setting up: one wait_fork VM (id 0) and the server ---- */

static bool console_says(const char *what)
{
	char buf[4096];
	int fd = open(env.console, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, what) != NULL;
}

static void boot_wait_fork(void)
{
	char console[96], kernel[4096];
	struct vm_config cfg = { .mem_size = 64 * MiB, .ncpus = 1, .console = console,
				 .kernel = kernel, .cmdline = "timeout_ms=120000" };
	struct vm *vm;

	snprintf(console, sizeof(console), "file:%s", env.console);
	snprintf(kernel, sizeof(kernel), "%s", harness_build_path("guest/wait_fork.elf"));
	if (env.vsock[0])
		cfg.devices.args[device_by_option("vsock")] = env.vsock;
	cr_assert_eq(vm_create(&vm, &env.vmm.kvm, &cfg), 0);
	cr_assert_eq(vm_boot(vm, &cfg), 0, "boot %s", kernel);
	vm->id = vm->parent_id = vmm_alloc_ids(&env.vmm, 1); /* as tests/fork_harness.c does */
	cr_assert_eq(vm->id, 0, "the first VM of a vmm is VM 0");
	cr_assert_eq(vmm_add(&env.vmm, vm), 0);
	cr_assert_eq(vm_start(vm), 0);
	for (int i = 0; i < 1000 && !console_says("wait_fork: ready"); i++)
		usleep(10 * 1000);
	cr_assert(console_says("wait_fork: ready"), "the guest did not come up");
}

static void api_env_start(bool boot)
{
	snprintf(env.sock, sizeof(env.sock), "/tmp/vm-fork-api-test-%d.sock", getpid());
	snprintf(env.console, sizeof(env.console), "/tmp/vm-fork-api-test-%d.console", getpid());
	if (boot) {
		SKIP_WITHOUT_KVM();
		cr_assert_eq(vmm_init(&env.vmm, NULL), 0);
		env.vmm_up = true;
		boot_wait_fork();
	} else {
		vmm_init_without_kvm(&env.vmm);
		env.vmm_up = true;
	}
	cr_assert_eq(api_server_start(&env.srv, &env.vmm, env.sock), 0);
}

static void api_env_stop(void)
{
	api_server_stop(env.srv);
	if (env.vmm_up)
		vmm_destroy(&env.vmm);
	if (env.console[0])
		unlink(env.console);
}

/* ---- HTTP through libcurl, into ans ---- */

static size_t take_body(char *data, size_t size, size_t n, void *opaque)
{
	size_t len = size * n;

	if (len > sizeof(ans.body) - 1 - ans.len)
		return 0;
	memcpy(ans.body + ans.len, data, len);
	ans.len += len;
	ans.body[ans.len] = '\0';
	return len;
}

static size_t take_header(char *data, size_t size, size_t n, void *opaque)
{
	if (!strncasecmp(data, "Allow:", 6))
		snprintf(ans.allow, sizeof(ans.allow), "%.*s", (int)(size * n - 6), data + 6);
	return size * n;
}

/* One request; returns the HTTP status and leaves the answer, parsed when JSON, in ans. */
/* A request; its answer in ans. CURLE_OK, or curl's error when no answer came. */
static CURLcode http_try(const char *method, const char *path, const char *body, size_t len,
			 bool chunked)
{
	struct curl_slist *hdrs = chunked ? curl_slist_append(NULL, "Transfer-Encoding: chunked")
					  : NULL;
	CURL *curl = curl_easy_init();
	char url[512];
	CURLcode rc;

	json_decref(ans.json);
	memset(&ans, 0, sizeof(ans));
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, env.sock);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, take_body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, take_header);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	/* A flood of connections (garbage_does_not_hurt) may fill the backlog for a moment. */
	for (int i = 0; (rc = curl_easy_perform(curl)) == CURLE_COULDNT_CONNECT && i < 100; i++)
		usleep(20 * 1000);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ans.status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	ans.json = ans.len ? json_loads(ans.body, 0, NULL) : NULL;
	cr_assert(!ans.len || ans.json, "%s %s: the answer is not JSON: %s", method, path, ans.body);
	return rc;
}

static long http_ex(const char *method, const char *path, const char *body, size_t len,
		    bool chunked)
{
	CURLcode rc = http_try(method, path, body, len, chunked);

	cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
	return ans.status;
}

static long http(const char *method, const char *path, const char *body)
{
	return http_ex(method, path, body, body ? strlen(body) : 0, false);
}

static json_int_t int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "\"%s\" is not an integer in %s", key, ans.body);
	return json_integer_value(v);
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_string(v), "\"%s\" is not a string in %s", key, ans.body);
	return json_string_value(v);
}

static void expect_state(const char *path, const char *state)
{
	cr_assert_eq(http("GET", path, NULL), 200, "%s", ans.body);
	cr_assert_str_eq(str_of(ans.json, "state"), state, "%s", ans.body);
}

static void expect_error(long status, const char *says)
{
	cr_assert_eq(ans.status, status, "%s", ans.body);
	cr_assert(strstr(str_of(ans.json, "error"), says), "wanted '%s' in %s", says, ans.body);
}

/* ---- Endpoints ---- */

Test(api, info_list_and_get, .fini = api_env_stop)
{
	json_t *vms;

	api_env_start(true);
	cr_assert_eq(http("GET", "/v1/info", NULL), 200, "%s", ans.body);
	cr_assert_str_eq(str_of(ans.json, "version"), VMFORK_VERSION);
	cr_assert_eq(int_of(ans.json, "vms"), 1);
	cr_assert_gt(int_of(json_object_get(ans.json, "process"), "open_fds"), 3, "%s", ans.body);
	cr_assert_gt(int_of(json_object_get(ans.json, "process"), "rss_kib"), 0, "%s", ans.body);
	cr_assert_eq(http("GET", "/v1/vms", NULL), 200, "%s", ans.body);
	vms = json_object_get(ans.json, "vms");
	cr_assert_eq(json_array_size(vms), 1, "%s", ans.body);
	cr_assert_eq(int_of(json_array_get(vms, 0), "id"), 0);
	cr_assert_eq(http("GET", "/v1/vms/0", NULL), 200, "%s", ans.body);
	cr_assert_eq(int_of(ans.json, "id"), 0);
	cr_assert_eq(int_of(ans.json, "parent_id"), 0);
	cr_assert_eq(int_of(ans.json, "generation"), 0);
	cr_assert_eq(int_of(ans.json, "child_index"), 0);
	cr_assert_eq(int_of(ans.json, "cpus"), 1);
	cr_assert_eq(int_of(ans.json, "mem_bytes"), 64 * MiB);
	cr_assert_str_eq(str_of(ans.json, "state"), "running");
	str_of(ans.json, "console");
	cr_assert_null(json_object_get(ans.json, "stop_reason"), "only for a stopped VM");
}

Test(api, pause_and_resume, .fini = api_env_stop)
{
	api_env_start(true);
	cr_assert_eq(http("PUT", "/v1/vms/0/pause", NULL), 200, "%s", ans.body);
	cr_assert_str_eq(str_of(ans.json, "state"), "paused");
	expect_state("/v1/vms/0", "paused");
	http("PUT", "/v1/vms/0/pause", NULL);
	expect_error(409, "paused");
	cr_assert_eq(http("PUT", "/v1/vms/0/resume", "{}"), 200, "an empty object is no argument");
	cr_assert_str_eq(str_of(ans.json, "state"), "running");
	http("PUT", "/v1/vms/0/resume", NULL);
	expect_error(409, "running");
	expect_state("/v1/vms/0", "running");
}

Test(api, stop_then_delete, .fini = api_env_stop)
{
	api_env_start(true);
	cr_assert_eq(http("PUT", "/v1/vms/0/stop", NULL), 200, "%s", ans.body);
	cr_assert_str_eq(str_of(ans.json, "state"), "stopped", "stopped within the second");
	cr_assert_str_eq(str_of(ans.json, "stop_reason"), vm_stop_reason_name(VM_STOP_REQUESTED));
	cr_assert_eq(int_of(ans.json, "exit_status"), 0);
	http("PUT", "/v1/vms/0/pause", NULL);
	expect_error(409, "stopped");
	http("PUT", "/v1/vms/0/resume", NULL);
	expect_error(409, "stopped");
	http("PUT", "/v1/vms/0/fork", NULL);
	expect_error(409, "stopped");
	cr_assert_eq(http("DELETE", "/v1/vms/0", NULL), 204);
	cr_assert_eq(ans.len, 0);
	http("GET", "/v1/vms/0", NULL);
	expect_error(404, "no VM with id 0");
	http("DELETE", "/v1/vms/0", NULL);
	expect_error(404, "no VM with id 0");
	cr_assert_eq(http("GET", "/v1/info", NULL), 200);
	cr_assert_eq(int_of(ans.json, "vms"), 0);
}

Test(api, bad_requests, .fini = api_env_stop)
{
	static const struct {
		const char *method, *path, *body;
		long status;
		const char *says;
	} cases[] = {
		{ "GET", "/", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/nope", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/vms/", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/vms/0/pause/x", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/vms/999999", NULL, 404, "no VM with id 999999" },
		{ "PUT", "/v1/vms/12345/pause", NULL, 404, "no VM with id 12345" },
		{ "PUT", "/v1/vms/7/fork", "{\"count\": 1}", 404, "no VM with id 7" },
		{ "GET", "/v1/vms/abc", NULL, 400, "not a VM id" },
		{ "GET", "/v1/vms/-1", NULL, 400, "not a VM id" },
		{ "GET", "/v1/vms/99999999999999999999", NULL, 400, "not a VM id" },
		{ "GET", "/v1/vms/0/pause", NULL, 405, "allowed: PUT" },
		{ "POST", "/v1/vms", NULL, 405, "allowed: GET" },
		{ "DELETE", "/v1/info", NULL, 405, "allowed: GET" },
		{ "PUT", "/v1/vms/0", NULL, 405, "allowed: GET, DELETE" },
		{ "PUT", "/v1/vms/0/fork", "not json", 400, "not valid JSON" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 1", 400, "not valid JSON" },
		{ "PUT", "/v1/vms/0/fork", "\xff\xfe{\x01", 400, "not valid JSON" },
		{ "PUT", "/v1/vms/0/fork", "[1, 2]", 400, "JSON object" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": \"3\"}", 400, "\"count\" must be an integer" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 0}", 400, "from 1 to 4096" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": -1}", 400, "from 1 to 4096" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 4097}", 400, "from 1 to 4096" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 1e9}", 400, "\"count\" must be an integer" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 1000000000}", 400, "from 1 to 4096" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 99999999999999999999}", 400, "not valid JSON" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 1.5}", 400, "\"count\" must be an integer" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": null}", 400, "\"count\" must be an integer" },
		{ "PUT", "/v1/vms/0/fork", "{\"start\": 1}", 400, "\"start\" must be true or false" },
		{ "PUT", "/v1/vms/0/fork", "{\"resume_parent\": \"no\"}", 400, "\"resume_parent\" must" },
		{ "PUT", "/v1/vms/0/fork", "{\"bogus\": 1}", 400, "unknown field \"bogus\"" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 1, \"count\": 2}", 400, "not valid JSON" },
		{ "PUT", "/v1/vms/0/pause", "{\"now\": true}", 400, "takes no arguments" },
		{ "PUT", "/v1/vms/0/stop", "\"stop\"", 400, "not valid JSON" },
	};

	api_env_start(true);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(http(cases[i].method, cases[i].path, cases[i].body), cases[i].status,
			     "case %zu: %s %s: %s", i, cases[i].method, cases[i].path, ans.body);
		cr_expect(strstr(str_of(ans.json, "error"), cases[i].says),
			  "case %zu: wanted '%s' in %s", i, cases[i].says, ans.body);
	}
	http("GET", "/v1/vms/0/pause", NULL);
	cr_assert(strstr(ans.allow, "PUT"), "405 carries Allow: %s", ans.allow);
	/* Nothing of the above changed anything. */
	expect_state("/v1/vms/0", "running");
	cr_assert_eq(http("GET", "/v1/info", NULL), 200);
	cr_assert_eq(int_of(ans.json, "vms"), 1, "no fork happened: %s", ans.body);
}

Test(api, oversized_bodies, .fini = api_env_stop)
{
	size_t len = API_MAX_BODY + 4096;
	char *big = malloc(len);

	api_env_start(true);
	memset(big, ' ', len);
	big[0] = '{';
	big[len - 1] = '}';
	/*
	 * The server answers 413 and closes without reading the rest: a client
	 * still sending may see the connection reset before it reads the answer.
	 */
	for (int chunked = 0; chunked < 2; chunked++) {
		CURLcode rc = http_try("PUT", "/v1/vms/0/fork", big, len, chunked);

		cr_assert(rc == CURLE_OK || rc == CURLE_SEND_ERROR, "%s", curl_easy_strerror(rc));
		if (rc == CURLE_OK)
			expect_error(413, "larger than");
	}
	/* Just under the limit is fine: an empty object padded with spaces. */
	cr_assert_eq(http_ex("PUT", "/v1/vms/0/pause", big, API_MAX_BODY, false), 400,
		     "a body that ends inside the object: %s", ans.body);
	big[API_MAX_BODY - 1] = '}';
	cr_assert_eq(http_ex("PUT", "/v1/vms/0/pause", big, API_MAX_BODY, true), 200, "%s",
		     ans.body);
	free(big);
	expect_state("/v1/vms/0", "paused");
}

/* ---- Garbage on a raw socket ---- */

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env.sock);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		  "connect: %s", strerror(errno));
	return fd;
}

static void raw_send_close(const void *data, size_t len)
{
	int fd = raw_connect();

	(void)!send(fd, data, len, MSG_NOSIGNAL);
	close(fd);
}

static void expect_alive(void)
{
	cr_assert_eq(http("GET", "/v1/info", NULL), 200, "the server still answers");
}

Test(api, garbage_does_not_hurt, .fini = api_env_stop)
{
	static const char *const partial[] = {
		"GET /v1/info HTTP/1.1\r\nHost: x\r\n",
		"PUT /v1/vms/0/fork HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"co",
		"PUT /v1/vms/0/fork HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\n{",
		"PUT /v1/vms/0/fork HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
		"GET /v1/info HTTP/9.9\r\n\r\n",
		"\r\n\r\n\r\n",
	};
	char buf[4096], reply[512] = "";
	int fds[72], fd;
	ssize_t n;

	api_env_start(true);
	srand(1);
	for (int i = 0; i < 50; i++) {
		for (size_t j = 0; j < sizeof(buf); j++)
			buf[j] = (char)rand();
		raw_send_close(buf, (size_t)(rand() % (int)sizeof(buf)) + 1);
	}
	expect_alive();
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
		raw_send_close(partial[i], strlen(partial[i]));
	expect_alive();
	memset(buf, 'A', sizeof(buf)); /* a header line far over any limit */
	for (int i = 0; i < 20; i++)
		raw_send_close(buf, sizeof(buf));
	/* More idle connections than the server serves at once (64): the rest wait in the backlog. */
	for (int i = 0; i < 72; i++)
		fds[i] = raw_connect();
	for (int i = 0; i < 72; i++)
		close(fds[i]);
	expect_alive();
	fd = raw_connect();
	cr_assert(send(fd, "GET /v1/info HTTP/1.0\r\n\r\n", 25, MSG_NOSIGNAL) == 25);
	n = recv(fd, reply, sizeof(reply) - 1, MSG_WAITALL);
	close(fd);
	cr_assert(n > 0 && !strncmp(reply, "HTTP/1.", 7) && strstr(reply, " 200 "), "%s", reply);
	expect_state("/v1/vms/0", "running");
}

/*
 * Routing and validation need neither a VM nor KVM: a VMM that has neither
 * answers every malformed request as the one with a VM does, and lists nothing.
 */
Test(api, routes_and_validation_without_a_vm, .fini = api_env_stop)
{
	static const struct {
		const char *method, *path, *body;
		long status;
		const char *says;
	} cases[] = {
		{ "GET", "/", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/nope", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/vms/", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/vms/0/pause/x", NULL, 404, "no such endpoint" },
		{ "GET", "/v1/vms/0", NULL, 404, "no VM with id 0" },
		{ "PUT", "/v1/vms/0/pause", NULL, 404, "no VM with id 0" },
		{ "PUT", "/v1/vms/0/resume", NULL, 404, "no VM with id 0" },
		{ "PUT", "/v1/vms/0/stop", NULL, 404, "no VM with id 0" },
		{ "DELETE", "/v1/vms/0", NULL, 404, "no VM with id 0" },
		{ "PUT", "/v1/vms/7/fork", "{\"count\": 1}", 404, "no VM with id 7" },
		{ "PUT", "/v1/vms/7/reset", NULL, 404, "no VM with id 7" },
		{ "GET", "/v1/vms/abc", NULL, 400, "not a VM id" },
		{ "GET", "/v1/vms/-1", NULL, 400, "not a VM id" },
		{ "GET", "/v1/vms/99999999999999999999", NULL, 400, "not a VM id" },
		{ "GET", "/v1/vms/0/pause", NULL, 405, "allowed: PUT" },
		{ "POST", "/v1/vms", NULL, 405, "allowed: GET" },
		{ "DELETE", "/v1/info", NULL, 405, "allowed: GET" },
		{ "PUT", "/v1/vms/0", NULL, 405, "allowed: GET, DELETE" },
		{ "PUT", "/v1/vms/0/fork", "not json", 400, "not valid JSON" },
		{ "PUT", "/v1/vms/0/fork", "[1, 2]", 400, "JSON object" },
		{ "PUT", "/v1/vms/0/fork", "{\"count\": 0}", 400, "from 1 to 4096" },
		{ "PUT", "/v1/vms/0/fork", "{\"bogus\": 1}", 400, "unknown field \"bogus\"" },
		{ "PUT", "/v1/vms/0/pause", "{\"now\": true}", 400, "takes no arguments" },
		/* "devices" is checked before the VM is looked for: a bad one forks nothing. */
		{ "PUT", "/v1/vms/0/fork", "{\"devices\": [\"vsock\"]}", 400, "must be an object" },
		{ "PUT", "/v1/vms/0/fork", "{\"devices\": {\"tape\": \"x\"}}", 400,
		  "no device has the option \"tape\"" },
		{ "PUT", "/v1/vms/0/fork", "{\"devices\": {\"disk\": \"/d\"}}", 400,
		  "cannot give a clone a backend of its own" },
		{ "PUT", "/v1/vms/0/fork", "{\"devices\": {\"vsock\": 7}}", 400, "must be a string" },
		{ "PUT", "/v1/vms/0/fork", "{\"devices\": {\"vsock\": \"\"}}", 400, "1 to 511 bytes" },
	};

	api_env_start(false);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(http(cases[i].method, cases[i].path, cases[i].body), cases[i].status,
			     "case %zu: %s %s: %s", i, cases[i].method, cases[i].path, ans.body);
		cr_expect(strstr(str_of(ans.json, "error"), cases[i].says),
			  "case %zu: wanted '%s' in %s", i, cases[i].says, ans.body);
	}
	cr_assert_eq(http("GET", "/v1/info", NULL), 200, "%s", ans.body);
	cr_assert_eq(int_of(ans.json, "vms"), 0, "%s", ans.body);
	cr_assert_eq(http("GET", "/v1/vms", NULL), 200, "%s", ans.body);
	cr_assert(json_is_array(json_object_get(ans.json, "vms")), "%s", ans.body);
	cr_assert_eq(json_array_size(json_object_get(ans.json, "vms")), 0, "%s", ans.body);
}

Test(api, limits_without_a_vm, .fini = api_env_stop)
{
	json_t *used;

	api_env_start(false);
	cr_assert_eq(http("GET", "/v1/limits", NULL), 200, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "max_vms"), VMM_DEFAULT_MAX_VMS, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "guest_forks_per_s"), VMM_DEFAULT_GUEST_FORKS_PER_S);
	cr_expect_eq(int_of(ans.json, "max_guest_forks"), VMM_DEFAULT_MAX_GUEST_FORKS);
	cr_expect_eq(int_of(ans.json, "max_clone_procs"), VMM_DEFAULT_MAX_CLONE_PROCS);
	used = json_object_get(ans.json, "used");
	cr_assert(json_is_object(used), "%s", ans.body);
	cr_expect_eq(int_of(used, "vms"), 0, "%s", ans.body);
	cr_expect_eq(int_of(used, "guest_forks"), 0, "%s", ans.body);

	cr_assert_eq(http("PUT", "/v1/limits", "{\"max_vms\": 5, \"guest_forks_per_s\": 0}"), 200,
		     "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "max_vms"), 5, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "guest_forks_per_s"), 0, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "max_clone_procs"), VMM_DEFAULT_MAX_CLONE_PROCS, "%s",
		     ans.body);
	cr_assert_eq(http("GET", "/v1/limits", NULL), 200, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "max_vms"), 5, "%s", ans.body);

	http("PUT", "/v1/limits", "{\"max_vms\": -1}");
	expect_error(400, "from 0 (no limit)");
	http("PUT", "/v1/limits", "{\"max_clone_procs\": \"many\"}");
	expect_error(400, "must be an integer");
	http("PUT", "/v1/limits", "{\"max_vms\": 4294967296}");
	expect_error(400, "to 4294967295");
	http("PUT", "/v1/limits", "{\"bogus\": 1}");
	expect_error(400, "unknown field \"bogus\"");
	/* A refused request changed nothing. */
	cr_assert_eq(http("GET", "/v1/limits", NULL), 200, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "max_vms"), 5, "%s", ans.body);
	cr_expect_eq(int_of(ans.json, "max_clone_procs"), VMM_DEFAULT_MAX_CLONE_PROCS);
}

/* ---- The socket file ---- */

/* A request the server answers without asking the vmm. */
static void expect_listening(void)
{
	cr_assert_eq(http("GET", "/v1/none", NULL), 404, "%s", ans.body);
}

Test(api, socket_file_lifecycle, .fini = api_env_stop)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_server *second;
	char longpath[200];
	struct stat st;
	int fd;

	api_env_start(false); /* no VM needed */
	cr_assert_eq(stat(env.sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "only the owner may drive VMs");
	cr_assert_eq(api_server_start(&second, &env.vmm, env.sock), -EADDRINUSE);
	expect_listening();
	api_server_stop(env.srv);
	env.srv = NULL;
	cr_assert(access(env.sock, F_OK) != 0, "stop removes the socket file");

	/* A socket left by a dead VMM is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env.sock);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(api_server_start(&env.srv, &env.vmm, env.sock), 0);
	expect_listening();
	api_server_stop(env.srv);
	env.srv = NULL;

	/* Something that is not a socket is left alone. */
	fd = open(env.sock, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(api_server_start(&second, &env.vmm, env.sock), -EEXIST);
	cr_assert_eq(stat(env.sock, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	unlink(env.sock);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	cr_assert_eq(api_server_start(&second, &env.vmm, longpath), -ENAMETOOLONG);
}

/* ---- Fork ---- */

static json_t *find_vm(json_t *vms, json_int_t id)
{
	size_t i;
	json_t *vm;

	json_array_foreach(vms, i, vm)
		if (json_integer_value(json_object_get(vm, "id")) == id)
			return vm;
	return NULL;
}

static void expect_children(json_int_t first, json_int_t second)
{
	json_t *vms, *a, *b;

	cr_assert_eq(http("GET", "/v1/vms", NULL), 200);
	vms = json_object_get(ans.json, "vms");
	cr_assert_eq(json_array_size(vms), 3, "%s", ans.body);
	a = find_vm(vms, first);
	b = find_vm(vms, second);
	cr_assert(a && b, "both clones are listed: %s", ans.body);
	cr_assert_eq(int_of(a, "parent_id"), 0);
	cr_assert_eq(int_of(b, "parent_id"), 0);
	cr_assert_eq(int_of(a, "generation"), 1);
	cr_assert_eq(int_of(b, "generation"), 1);
	cr_assert_eq(int_of(a, "child_index") + int_of(b, "child_index"), 3, "indexes 1 and 2");
	cr_assert_eq(int_of(a, "mem_bytes"), 64 * MiB);
}

Test(api, fork_into_two, .fini = api_env_stop)
{
	json_t *children, *stats;
	json_int_t a, b;
	char path[64];

	api_env_start(true);
	cr_assert_eq(http("PUT", "/v1/vms/0/fork", "{\"count\": 2, \"start\": false}"), 200,
		     "%s", ans.body);
	cr_assert_eq(int_of(ans.json, "parent"), 0);
	children = json_object_get(ans.json, "children");
	cr_assert_eq(json_array_size(children), 2, "%s", ans.body);
	a = int_of(json_array_get(children, 0), "id");
	b = int_of(json_array_get(children, 1), "id");
	cr_assert(a != b && a > 0 && b > 0, "%s", ans.body);
	str_of(json_array_get(children, 0), "console");
	stats = json_object_get(ans.json, "stats");
	cr_assert(int_of(stats, "total_us") >= int_of(stats, "paused_us"), "%s", ans.body);
	int_of(stats, "pages_copied");
	int_of(stats, "from_shells");
	expect_children(a, b);
	expect_state("/v1/vms/0", "running");
	snprintf(path, sizeof(path), "/v1/vms/%lld", (long long)a);
	expect_state(path, "paused");
	snprintf(path, sizeof(path), "/v1/vms/%lld/resume", (long long)a);
	cr_assert_eq(http("PUT", path, NULL), 200, "%s", ans.body);
	/* The clone sees its new generation and exits 0x40 | its id (guest/wait_fork.c). */
	snprintf(path, sizeof(path), "/v1/vms/%lld", (long long)a);
	for (int i = 0; i < 500 && http("GET", path, NULL) == 200 &&
			strcmp(str_of(ans.json, "state"), "stopped"); i++)
		usleep(20 * 1000);
	cr_assert_str_eq(str_of(ans.json, "state"), "stopped", "%s", ans.body);
	cr_assert_eq(int_of(ans.json, "exit_status"), 0x40 | (a & 0x3f), "%s", ans.body);
}

Test(api, fork_can_leave_the_parent_paused, .fini = api_env_stop)
{
	api_env_start(true);
	cr_assert_eq(http("PUT", "/v1/vms/0/fork", "{\"resume_parent\": false}"), 200, "%s",
		     ans.body);
	cr_assert_eq(json_array_size(json_object_get(ans.json, "children")), 1, "count defaults to 1");
	expect_state("/v1/vms/0", "paused");
}

/* ---- Clones' own backends: "devices" ---- */

Test(api, fork_device_arguments_are_bounded, .fini = api_env_stop)
{
	char body[DEVICE_ARG_MAX + 64], arg[DEVICE_ARG_MAX + 1];

	api_env_start(false);
	memset(arg, 'a', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"devices\": {\"vsock\": \"/%s\"}}", arg + 1);
	cr_expect_eq(http("PUT", "/v1/vms/0/fork", body), 400, "%s", ans.body);
	expect_error(400, "1 to 511 bytes");
	arg[DEVICE_ARG_MAX - 1] = '\0';
	snprintf(body, sizeof(body), "{\"devices\": {\"vsock\": \"/%s\"}}", arg + 1);
	cr_expect_eq(http("PUT", "/v1/vms/0/fork", body), 404, "511 bytes pass: %s", ans.body);
}

static void make_dir(char *dir, size_t size, const char *name)
{
	snprintf(dir, size, "/tmp/vmf-api-%s-XXXXXX", name);
	cr_assert(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static bool is_socket_at(const char *dir, const char *fmt, json_int_t id)
{
	char name[64], path[160];
	struct stat st;

	snprintf(name, sizeof(name), fmt, (unsigned)id);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* What a snapshot of clone id says the vsock device was turned on with. */
static void expect_snapshot_arg(json_int_t id, const char *want)
{
	struct vm *vm = vmm_get(&env.vmm, (uint64_t)id);
	int vsock = device_by_option("vsock");
	struct vm_snapshot snap;

	cr_assert(vm, "clone %lld is registered", (long long)id);
	vm_op_lock(vm);
	cr_assert_eq(vm_snapshot_capture(vm, vmm_msr_list(&env.vmm), &snap), 0);
	vm_op_unlock(vm);
	cr_expect(snap.devs[vsock].on);
	cr_expect_str_eq(snap.devs[vsock].arg, want, "clone %lld's snapshot", (long long)id);
	vm_snapshot_free(&snap);
	vmm_put(&env.vmm, vm);
}

Test(api, fork_gives_clones_their_own_vsock, .timeout = 300, .fini = api_env_stop)
{
	char old_dir[64], new_dir[64], body[256], want[128], cmd[160];
	json_t *children;
	json_int_t id[2];

	SKIP_WITHOUT_KVM(); /* before the folders: a skipped test runs no .fini */
	make_dir(old_dir, sizeof(old_dir), "old");
	make_dir(new_dir, sizeof(new_dir), "new");
	snprintf(env.vsock, sizeof(env.vsock), "%s/v%%u.sock", old_dir);
	api_env_start(true);
	cr_assert(is_socket_at(old_dir, "v%u.sock", 0), "VM 0 listens on its own socket");
	/* A device the parent does not have, then one refused by the device itself. */
	cr_expect_eq(http("PUT", "/v1/vms/0/fork", "{\"devices\": {\"net\": \"tap:t%u\"}}"),
		     400, "%s", ans.body);
	expect_error(400, "has no virtio-net");
	cr_expect_eq(http("PUT", "/v1/vms/0/fork", "{\"devices\": {\"vsock\": \"/x,cid=2\"}}"),
		     400, "%s", ans.body);
	expect_error(400, "refused its argument");
	cr_assert_eq(http("GET", "/v1/vms", NULL), 200);
	cr_expect_eq(json_array_size(json_object_get(ans.json, "vms")), 1, "forked: %s", ans.body);

	snprintf(body, sizeof(body), "{\"count\": 2, \"start\": false, "
		 "\"devices\": {\"vsock\": \"%s/x%%u.sock\"}}", new_dir);
	cr_assert_eq(http("PUT", "/v1/vms/0/fork", body), 200, "%s", ans.body);
	children = json_object_get(ans.json, "children");
	cr_assert_eq(json_array_size(children), 2, "%s", ans.body);
	snprintf(want, sizeof(want), "%s/x%%u.sock", new_dir);
	for (int i = 0; i < 2; i++) {
		id[i] = int_of(json_array_get(children, i), "id");
		cr_expect(is_socket_at(new_dir, "x%u.sock", id[i]), "clone %lld at its new path",
			  (long long)id[i]);
		cr_expect(!is_socket_at(old_dir, "v%u.sock", id[i]), "clone %lld on the parent's",
			  (long long)id[i]);
		expect_snapshot_arg(id[i], want);
	}
	cr_expect(is_socket_at(old_dir, "v%u.sock", 0), "the parent keeps its socket");
	api_env_stop();
	env.srv = NULL, env.vmm_up = false;
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", old_dir, new_dir);
	cr_expect_eq(system(cmd), 0);
}

/* ---- The CLI clients ---- */

#define CLI(...) harness_run_cli((char *const[]){ "vm-fork", __VA_ARGS__, NULL }, cli_out, \
				 sizeof(cli_out), 30)

static void expect_out(const char *says)
{
	cr_assert(strstr(cli_out, says), "wanted '%s' in: %s", says, cli_out);
}

Test(api, cli_clients, .fini = api_env_stop)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *json;
	int fd;

	api_env_start(true);
	cr_assert_eq(CLI("info", "--api", env.sock), 0, "%s", cli_out);
	expect_out("CONSOLE");
	expect_out("running");
	cr_assert_eq(CLI("info", "--api", env.sock, "--id", "0", "--json"), 0, "%s", cli_out);
	json = json_loads(cli_out, 0, NULL);
	cr_assert(json_is_object(json), "--json prints JSON: %s", cli_out);
	cr_assert_eq(json_integer_value(json_object_get(json, "id")), 0, "%s", cli_out);
	json_decref(json);
	cr_assert_eq(CLI("info", "--api", env.sock, "--id", "0"), 0, "%s", cli_out);
	expect_out("generation");
	cr_assert_eq(CLI("pause", "--api", env.sock, "--id", "0"), 0, "%s", cli_out);
	expect_out("VM 0: paused");
	cr_assert_eq(CLI("pause", "--api", env.sock, "--id", "0"), 1, "%s", cli_out);
	expect_out("cannot pause VM 0: it is paused");
	cr_assert_eq(CLI("resume", "--api", env.sock, "--id", "0"), 0, "%s", cli_out);
	expect_out("VM 0: running");
	cr_assert_eq(CLI("fork", "--api", env.sock, "--count", "2", "--paused"), 0, "%s", cli_out);
	expect_out("clone 1 console ");
	expect_out("clone 2 console ");
	expect_out("forked VM 0 into 2 clone(s) in ");
	cr_assert_eq(CLI("info", "--api", env.sock, "--id", "77"), 1, "%s", cli_out);
	expect_out("no VM with id 77");
	cr_assert_eq(CLI("stop", "--api", env.sock, "--id", "1"), 0, "%s", cli_out);
	expect_out("VM 1: stopped");

	cr_assert_eq(CLI("pause", "--api", env.sock), 64, "%s", cli_out);
	expect_out("--id ID is required");
	cr_assert_eq(CLI("fork", "--api", env.sock, "--count", "0"), 64, "%s", cli_out);
	expect_out("from 1 to 4096");
	cr_assert_eq(CLI("pause", "--api", env.sock, "--id", "0", "--count", "2"), 64, "%s", cli_out);
	cr_assert_eq(CLI("info"), 64, "%s", cli_out);
	expect_out("--api PATH");
	cr_assert_eq(CLI("info", "--api", "/nonexistent/api.sock"), 1, "%s", cli_out);
	expect_out("no API socket at /nonexistent/api.sock");
	/* A socket file nobody listens on. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.stale", env.sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(CLI("info", "--api", sa.sun_path), 1, "%s", cli_out);
	unlink(sa.sun_path);
	expect_out("cannot connect to");
	for (const char *const *c = (const char *const[]){ "fork", "info", "pause", "resume",
							   "stop", NULL }; *c; c++) {
		cr_assert_eq(CLI((char *)*c, "--help"), 0, "%s", cli_out);
		expect_out("--api PATH");
	}
}
