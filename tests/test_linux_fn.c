/*
 * The example function (guest/linux/fn-words.c) in a Linux template forked
 * into clones: each clone answers a request delivered over vsock (the body,
 * then the host's half-close) with the same computation over the table the
 * template built, its own CID and its own random bytes.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

#define NCLONES 4

static bool listening(const char *out)
{
	return strstr(out, "fn-words: listening") || strstr(out, "fn-words: cannot");
}

/* Deliver body to VM id's function (DIR/v<id>.sock, port 8080): its answer line. */
static void invoke(const char *dir, unsigned id, const char *body, char *answer, size_t size)
{
	char path[128], line[64];
	int fd;

	snprintf(path, sizeof(path), "%s/v%u.sock", dir, id);
	fd = linux_unix_connect(path);
	cr_assert_eq(write(fd, "CONNECT 8080\n", 13), 13);
	linux_read_line(fd, line, sizeof(line));
	cr_assert(!strncmp(line, "OK ", 3), "VM %u: '%s' to CONNECT", id, line);
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	linux_read_line(fd, answer, size);
	close(fd);
}

struct fn_answer {
	long long count, cid;
	char random[17];
};

static void parse(const char *text, unsigned id, struct fn_answer *a)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	const char *prefix = NULL, *rnd = NULL;

	cr_assert(j, "VM %u answered '%s': %s", id, text, err.text);
	cr_assert_eq(json_unpack(j, "{s:s, s:I, s:I, s:s}", "prefix", &prefix, "count", &a->count,
				 "cid", &a->cid, "random", &rnd), 0, "VM %u answered '%s'", id, text);
	cr_expect_str_eq(prefix, "ab");
	snprintf(a->random, sizeof(a->random), "%s", rnd);
	json_decref(j);
}

Test(linux_fn, clones_answer_requests_for_themselves, .timeout = 150)
{
	char *kernel = linux_small_kernel(), *fn = strdup(harness_build_path("linux/fn-words"));
	char dir[] = "/tmp/vm-fork-fn-XXXXXX", arg[64], cli[4096], text[512], *out;
	const char *files[] = { fn, NULL }, *extra[] = { "--vsock", arg, "--rng", NULL };
	struct fn_answer a[NCLONES + 1];
	struct linux_vm vm;

	cr_assert(mkdtemp(dir));
	snprintf(arg, sizeof(arg), "%s/v%%u.sock", dir);
	linux_start_files(&vm, kernel, linux_fn_init, files, NULL, extra);
	out = linux_wait_for(&vm, vm.console, listening, 240);
	cr_assert(strstr(out, "fn-words: listening"), "the function is not up:\n%s", linux_tail(out));
	free(out);
	linux_cli(&vm, "pause", cli, sizeof(cli), NULL);
	linux_cli(&vm, "fork", cli, sizeof(cli), "--count", "4", NULL);
	for (unsigned id = 1; id <= NCLONES; id++) {
		invoke(dir, id, "ab\n", text, sizeof(text));
		cr_log_info("clone %u: %s", id, text);
		parse(text, id, &a[id]);
		cr_expect_eq(a[id].cid, 3 + id, "clone %u answered as CID %lld", id, a[id].cid);
	}
	linux_cli(&vm, "resume", cli, sizeof(cli), NULL);
	invoke(dir, 0, "ab", text, sizeof(text));
	parse(text, 0, &a[0]);
	for (unsigned i = 0; i <= NCLONES; i++) {
		cr_expect_gt(a[i].count, 0, "no word starts with ab in VM %u's table", i);
		cr_expect_eq(a[i].count, a[0].count, "VM %u counts %lld, the parent %lld", i, a[i].count,
			     a[0].count);
		for (unsigned j = i + 1; j <= NCLONES; j++)
			cr_expect_str_neq(a[i].random, a[j].random, "VMs %u and %u drew the same bytes", i, j);
	}
	/* A request the function drops unanswered: the host reads EOF, and the function goes on. */
	invoke(dir, 0, "!exit", text, sizeof(text));
	cr_expect_str_eq(text, "");
	invoke(dir, 0, "ab", text, sizeof(text));
	cr_expect(strstr(text, "\"count\""), "after a dropped request: '%s'", text);
	linux_stop(&vm);
	snprintf(cli, sizeof(cli), "rm -rf %s", dir);
	cr_expect_eq(system(cli), 0);
	free(fn);
	free(kernel);
}
