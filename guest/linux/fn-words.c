/*
 * The example function for `vm-fork serve` (issue: serverless pools): a
 * static vsock server for a busybox Linux guest. At start-up it builds a
 * table, the work a template saves every request: WORDS pseudo-words drawn
 * from a fixed seed, sorted, with a running checksum. Then it tells the host
 * it is ready (a connection to the host's port READY_PORT, "ready\n"; no
 * host listening is fine) and answers each connection on PORT:
 *   request: the body, up to EOF (the host's shutdown(SHUT_WR)), at most 64 KiB;
 *   answer:  {"prefix":"<first line of the body>","count":N,"first":"<word>",
 *             "cid":C,"random":"<16 hex digits>"} and a newline, then close.
 * count: words with that prefix (two binary searches); cid: the guest's
 * vsock CID (a clone's own); random: 8 bytes of getrandom(), which clones
 * draw apart once VMGenID reseeded them.
 * Bodies for the tests of failures: "!exit" closes without an answer,
 * "!hang" never answers, "!poweroff" powers the VM off; "!eat N" writes N
 * MiB of fresh memory first (a clone over its memory limit), then answers.
 * Usage: fn-words PORT [READY_PORT]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vsock_util.h"

#define WORDS    (1u << 18)
#define WORD_MAX 12
#define BODY_MAX (64 * 1024)

static char (*words)[WORD_MAX];

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The table: the same words in every boot (a fixed xorshift seed), sorted. */
static void build_table(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	words = calloc(WORDS, WORD_MAX);
	if (!words) {
		printf("fn-words: no memory for the table\n");
		exit(1);
	}
	for (unsigned i = 0; i < WORDS; i++) {
		unsigned len;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = 3 + (unsigned)(x % (WORD_MAX - 4));
		for (unsigned j = 0; j < len; j++)
			words[i][j] = (char)('a' + (x >> (5 * j + 8)) % 26);
	}
	qsort(words, WORDS, WORD_MAX, cmp);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("fn-words: %u words sorted in %ld ms\n", WORDS,
	       (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

/* The first word not below key when after is 0; the first word after every word with prefix key when 1. */
static unsigned bound(const char *key, size_t len, int after)
{
	unsigned lo = 0, hi = WORDS;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = strncmp(words[mid], key, len);

		if (c < 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The body up to EOF, NUL-terminated; its length, or -1. */
static ssize_t read_body(int fd, char *body)
{
	size_t n = 0;
	ssize_t got;

	while (n < BODY_MAX && (got = read(fd, body + n, BODY_MAX - n)) > 0)
		n += (size_t)got;
	body[n] = '\0';
	return (ssize_t)n;
}

static void answer(int fd, char *body)
{
	unsigned char rnd[8] = { 0 };
	char out[512];
	unsigned lo, hi;
	size_t len;
	int n;

	body[strcspn(body, "\r\n\"\\")] = '\0';
	len = strlen(body) < WORD_MAX ? strlen(body) : WORD_MAX - 1;
	body[len] = '\0';
	lo = bound(body, len, 0);
	hi = bound(body, len, 1);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	n = snprintf(out, sizeof(out),
		     "{\"prefix\":\"%s\",\"count\":%u,\"first\":\"%s\",\"cid\":%u,"
		     "\"random\":\"%02x%02x%02x%02x%02x%02x%02x%02x\"}\n",
		     body, hi - lo, lo < WORDS ? words[lo] : "", local_cid(), rnd[0], rnd[1], rnd[2],
		     rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	write_all(fd, out, (size_t)n);
}

static char *eaten; /* global: the writes below are not dead stores */

/* mib MiB, each page written, kept until the VM ends. */
static void eat(unsigned long mib)
{
	eaten = mib && mib < 4096 ? malloc(mib << 20) : NULL;
	for (unsigned long i = 0; eaten && i < mib << 20; i += 4096)
		eaten[i] = 1;
}

static void serve(int fd)
{
	static char body[BODY_MAX + 1];

	if (read_body(fd, body) < 0)
		return;
	if (!strncmp(body, "!exit", 5))
		return;
	if (!strncmp(body, "!hang", 5))
		for (;;)
			pause();
	if (!strncmp(body, "!eat ", 5))
		eat(strtoul(body + 5, NULL, 10));
	if (!strncmp(body, "!poweroff", 9)) {
		sync();
		reboot(LINUX_REBOOT_CMD_POWER_OFF);
	}
	answer(fd, body);
}

/* Tell the host the table is built; nothing listening there is fine. */
static void say_ready(unsigned port)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		write_all(fd, "ready\n", 6);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
	int lfd, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || argc > 3) {
		printf("usage: fn-words PORT [READY_PORT]\n");
		return 2;
	}
	build_table();
	addr.svm_port = (unsigned)atoi(argv[1]);
	lfd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0) {
		printf("fn-words: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	if (argc == 3)
		say_ready((unsigned)atoi(argv[2]));
	printf("fn-words: listening on port %u, cid %u\n", addr.svm_port, local_cid());
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
}
