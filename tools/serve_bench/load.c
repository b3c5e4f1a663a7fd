/* The load client of make bench-serve (tools/serve_bench/load.h). */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "server/vsock_call.h"
#include "tools/serve_bench/load.h"

struct reply {
	char body[65536];           /* GET /metrics fits */
	size_t len;
	struct load_sample *s;
};

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
	struct reply *r = opaque;
	size_t room = sizeof(r->body) - 1 - r->len, take = size * n < room ? size * n : room;

	memcpy(r->body + r->len, data, take);
	r->len += take;
	r->body[r->len] = '\0';
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *opaque)
{
	struct load_sample *s = ((struct reply *)opaque)->s;

	if (!strncasecmp(data, "X-Clone-Id:", 11))
		s->clone_id = strtoull(data + 11, NULL, 10);
	if (!strncasecmp(data, "Server-Timing:", 14))
		sscanf(data + 14, " fork;dur=%lf, deliver;dur=%lf, answer;dur=%lf", &s->fork_ms,
		       &s->deliver_ms, &s->answer_ms);
	return size * n;
}

/* One request; the status in s (0: no answer), the body in r. */
static void http(CURL *curl, const struct load_target *t, const char *method, const char *path,
		 const char *body, struct reply *r)
{
	char url[256];

	r->len = 0;
	r->body[0] = '\0';
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, t->sock);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 300L);
	r->s->status = 0;
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->s->status);
}

static void take_random(struct load_sample *s, const char *answer)
{
	json_t *j = json_loads(answer, 0, NULL);
	const char *rnd = json_string_value(json_object_get(j, "random"));

	snprintf(s->random, sizeof(s->random), "%s", rnd ? rnd : "");
	json_decref(j);
}

void load_result_init(struct load_result *r, unsigned n)
{
	memset(r, 0, sizeof(*r));
	r->samples = calloc(n ? n : 1, sizeof(*r->samples));
	r->n = r->samples ? n : 0;
	for (unsigned i = 0; i < r->n; i++)
		r->samples[i].fork_ms = r->samples[i].deliver_ms = r->samples[i].answer_ms = -1;
}

void load_result_free(struct load_result *r)
{
	free(r->samples);
	memset(r, 0, sizeof(*r));
}

struct worker {
	pthread_t t;
	const struct load_target *target;
	atomic_uint *next;
	struct load_result *r;
};

static void *invoke_thread(void *arg)
{
	struct worker *w = arg;
	CURL *curl = curl_easy_init();
	struct reply rep;
	char path[128];
	unsigned i;

	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", w->target->function);
	while ((i = atomic_fetch_add(w->next, 1)) < w->r->n) {
		uint64_t start = now_ns();

		rep.s = &w->r->samples[i];
		http(curl, w->target, "POST", path, "ab", &rep);
		rep.s->e2e_ns = now_ns() - start;
		take_random(rep.s, rep.body);
		if (rep.s->status != 200)
			snprintf(rep.s->error, sizeof(rep.s->error), "%.95s", rep.body);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

void load_run(const struct load_target *t, unsigned n, unsigned conc, struct load_result *r)
{
	struct worker w[LOAD_MAX_CONCURRENCY];
	atomic_uint next = 0;
	uint64_t start = now_ns();

	load_result_init(r, n);
	r->concurrency = conc;
	for (unsigned i = 0; i < conc; i++) {
		w[i] = (struct worker){ .target = t, .next = &next, .r = r };
		pthread_create(&w[i].t, NULL, invoke_thread, &w[i]);
	}
	for (unsigned i = 0; i < conc; i++)
		pthread_join(w[i].t, NULL);
	r->wall_ns = now_ns() - start;
}

long long load_pool_figure(const struct load_target *t, const char *key)
{
	CURL *curl = curl_easy_init();
	struct load_sample s;
	struct reply rep = { .s = &s };
	long long v = -1;
	json_t *j, *f;

	http(curl, t, "GET", "/v1/functions", NULL, &rep);
	curl_easy_cleanup(curl);
	j = s.status == 200 ? json_loads(rep.body, 0, NULL) : NULL;
	f = json_object_get(json_object_get(json_object_get(j, "functions"), t->function), key);
	if (json_is_integer(f))
		v = json_integer_value(f);
	json_decref(j);
	return v;
}

bool load_limits_enforced(const struct load_target *t, char *why, size_t len)
{
	CURL *curl = curl_easy_init();
	struct load_sample s;
	struct reply rep = { .s = &s };
	json_t *j, *l;
	bool yes;

	http(curl, t, "GET", "/v1/functions", NULL, &rep);
	curl_easy_cleanup(curl);
	j = s.status == 200 ? json_loads(rep.body, 0, NULL) : NULL;
	l = json_object_get(json_object_get(json_object_get(j, "functions"), t->function), "limits");
	yes = json_is_true(json_object_get(l, "enforced"));
	snprintf(why, len, "%s", json_string_value(json_object_get(l, yes ? "cgroup" : "why")) ?: "?");
	json_decref(j);
	return yes;
}

void load_wait_idle(const struct load_target *t, unsigned warm)
{
	for (unsigned i = 0; i < 1200; i++) {
		if (load_pool_figure(t, "inflight") == 0 && load_pool_figure(t, "warm") == warm)
			return;
		usleep(50000);
	}
}

void load_process_figures(const struct load_target *t, struct load_process *p)
{
	CURL *curl = curl_easy_init();
	static struct reply rep;
	struct load_sample s;
	const char *at;

	rep.s = &s;
	p->fds = p->rss = -1;
	http(curl, t, "GET", "/metrics", NULL, &rep);
	curl_easy_cleanup(curl);
	at = strstr(rep.body, "\nprocess_open_fds ");
	if (at)
		sscanf(at, "\nprocess_open_fds %lld", &p->fds);
	at = strstr(rep.body, "\nprocess_resident_memory_bytes ");
	if (at)
		sscanf(at, "\nprocess_resident_memory_bytes %lld", &p->rss);
}

/* One fork of the template through the control API, timed to the clone's first answer. */
static void raw_fork(CURL *curl, const struct load_target *t, long long tmpl, const char *dir,
		     struct load_sample *s)
{
	struct reply rep = { .s = s };
	char path[96], sock[160], *answer = NULL;
	uint64_t start = now_ns();
	json_t *j;
	size_t len;

	snprintf(path, sizeof(path), "/v1/vms/%lld/fork", tmpl);
	http(curl, t, "PUT", path, "{\"count\": 1, \"start\": true}", &rep);
	j = s->status == 200 ? json_loads(rep.body, 0, NULL) : NULL;
	if (!j)
		fprintf(stderr, "serve-bench: fork through the API: %ld %s\n", s->status, rep.body);
	s->clone_id = (unsigned long long)json_integer_value(
		json_object_get(json_array_get(json_object_get(j, "children"), 0), "id"));
	json_decref(j);
	if (s->clone_id) {
		struct vsock_call c = { .path = sock, .port = 8080, .body = "ab", .len = 2,
					.timeout_ms = 60000, .max_answer = 4096 };

		snprintf(sock, sizeof(sock), "%s/w%llu.sock", dir, s->clone_id);
		int ret = vsock_call(&c, &answer, &len);

		s->e2e_ns = now_ns() - start;
		if (answer)
			take_random(s, answer);
		free(answer);
		snprintf(path, sizeof(path), "/v1/vms/%llu", s->clone_id);
		http(curl, t, "DELETE", path, NULL, &rep);
		s->status = ret == 0 && s->status == 204 ? 200 : 0; /* answered, then deleted */
	}
}

void load_raw_forks(const struct load_target *t, unsigned n, const char *vsock_dir,
		    struct load_result *r)
{
	long long tmpl = load_pool_figure(t, "template");
	CURL *curl = curl_easy_init();
	uint64_t start = now_ns();

	load_result_init(r, n);
	r->concurrency = 1;
	for (unsigned i = 0; i < r->n && tmpl >= 0; i++)
		raw_fork(curl, t, tmpl, vsock_dir, &r->samples[i]);
	r->wall_ns = now_ns() - start;
	curl_easy_cleanup(curl);
}

bool load_all_correct(const struct load_result *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		if (r->samples[i].status != 200 || !r->samples[i].random[0])
			return false;
		for (unsigned k = 0; k < i; k++)
			if (r->samples[k].clone_id == r->samples[i].clone_id ||
			    !strcmp(r->samples[k].random, r->samples[i].random))
				return false;
	}
	return r->n > 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p of the n values (sorted here). */
static double pct(double *v, unsigned n, double p)
{
	double rank = ceil(p / 100.0 * n);
	unsigned i = rank < 1 ? 0 : (unsigned)rank - 1;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[i < n ? i : n - 1];
}

enum field { F_E2E, F_FORK, F_DELIVER, F_ANSWER };

static double field_ms(const struct load_sample *s, enum field f)
{
	return f == F_E2E ? (double)s->e2e_ns / 1e6 : f == F_FORK ? s->fork_ms :
	       f == F_DELIVER ? s->deliver_ms : s->answer_ms;
}

static unsigned good(const struct load_result *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->n; i++)
		n += r->samples[i].status == 200;
	return n;
}

/* What the first failed request of a row got, under its line. */
static void first_failure(FILE *out, const struct load_result *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		const struct load_sample *s = &r->samples[i];

		if (s->status != 200) {
			fprintf(out, "  (request %u of %u failed first: %ld %s)\n", i + 1, r->n, s->status,
				s->error);
			return;
		}
	}
}

/* One line of the table: p50/p99/p99.9 of a field over the good samples; its p50 returned. */
static double line(FILE *out, const char *what, const struct load_result *r, enum field f,
		   bool rate)
{
	double *v = calloc(r->n + 1, sizeof(*v)), p50;
	unsigned n = 0;

	for (unsigned i = 0; v && i < r->n; i++)
		if (r->samples[i].status == 200 && field_ms(&r->samples[i], f) >= 0)
			v[n++] = field_ms(&r->samples[i], f);
	p50 = pct(v, n, 50);
	fprintf(out, "%-34s %5u/%-5u %3u", what, n, r->n, r->concurrency);
	if (rate)
		fprintf(out, " %9.1f", r->wall_ns ? good(r) / ((double)r->wall_ns / 1e9) : 0);
	else
		fprintf(out, " %9s", "");
	fprintf(out, " %10.3f %10.3f %10.3f\n", p50, pct(v, n, 99), pct(v, n, 99.9));
	free(v);
	if (rate)
		first_failure(out, r);
	return p50;
}

static double rate(const struct load_result *r)
{
	return r->wall_ns ? good(r) / ((double)r->wall_ns / 1e9) : 0;
}

void load_report(FILE *out, const char *kvm, struct load_rows *rows,
		 const struct load_process *before, const struct load_process *after)
{
	struct load_result *pool = &rows->pool, *seq = &rows->seq, *raw = &rows->raw;
	struct load_result *boot = &rows->boot, *qemu = &rows->qemu;
	double seq_p50, raw_p50, qemu_p50 = NAN;

	fprintf(out, "vm-fork serve under load; KVM: %s\n", kvm);
	fprintf(out, "%-34s %11s %3s %9s %10s %10s %10s\n", "", "ok/n", "at", "req/s", "p50 ms",
		"p99 ms", "p99.9 ms");
	line(out, "pool: end to end", pool, F_E2E, true);
	line(out, "  fork (or take a warm clone)", pool, F_FORK, false);
	line(out, "  deliver the body", pool, F_DELIVER, false);
	line(out, "  answer", pool, F_ANSWER, false);
	seq_p50 = line(out, "pool, one at a time: end to end", seq, F_E2E, true);
	raw_p50 = line(out, "raw: API fork -> first vsock answer", raw, F_E2E, true);
	if (rows->limited.n) {
		line(out, "limits: one at a time, end to end", &rows->limited, F_E2E, true);
		line(out, "  fork (a clone process, its cgroup)", &rows->limited, F_FORK, false);
	}
	line(out, "a VM booted per request", boot, F_E2E, true);
	if (qemu->n)
		qemu_p50 = line(out, "QEMU restored per request", qemu, F_E2E, true);
	else
		fprintf(out, "%-34s (none: %s)\n", "QEMU restored per request", rows->qemu_why);
	fprintf(out, "throughput: pool %.1f/s, booting a VM per request %.2f/s: %.1fx (target >= 10x)\n",
		rate(pool), rate(boot), rate(boot) > 0 ? rate(pool) / rate(boot) : INFINITY);
	fprintf(out, "p50 one at a time through the pool / raw fork-to-first-reply: %.2fx (target <= 2x)\n",
		raw_p50 > 0 ? seq_p50 / raw_p50 : NAN);
	if (qemu->n)
		fprintf(out, "p50 one at a time: QEMU restored per request / the pool: %.1fx; QEMU's "
			"answers %s%s%s\n", seq_p50 > 0 ? qemu_p50 / seq_p50 : NAN,
			load_all_correct(qemu) ? "all correct, random all different" :
			"NOT all correct or not all different", *rows->qemu_why ? "; a failure: " : "",
			rows->qemu_why);
	if (rows->limited.n)
		fprintf(out, "limits (a process and a cgroup v2 per clone) %s: %s; answers %s\n",
			rows->limits_enforced ? "enforced, under" : "NOT enforced", rows->limits_why,
			load_all_correct(&rows->limited) ? "all correct" : "NOT all correct");
	fprintf(out, "answers: pool %s, one at a time %s, raw %s (each: 200, its own clone, its own random)\n",
		load_all_correct(pool) ? "all correct" : "NOT all correct",
		load_all_correct(seq) ? "all correct" : "NOT all correct",
		load_all_correct(raw) ? "all correct" : "NOT all correct");
	fprintf(out, "daemon around the %u invocations: fds %lld -> %lld, RSS %lld -> %lld KiB\n",
		pool->n, before->fds, after->fds, before->rss >> 10, after->rss >> 10);
}
