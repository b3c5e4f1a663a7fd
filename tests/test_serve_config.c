/* The configuration of `vm-fork serve` (server/serve_config.h): defaults, and errors that name the key. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/api.h"
#include "server/serve_config.h"

static const char good[] =
	"{ \"api\": \"/tmp/s.sock\", \"tcp\": \"127.0.0.1:8080\", \"functions\": {"
	"  \"words\": { \"kernel\": \"k\", \"initrd\": \"i\", \"cmdline\": \"quiet\", \"mem\": \"128M\","
	"    \"vsock\": \"/tmp/w%u.sock\", \"port\": 8080, \"ready_port\": 9,"
	"    \"pool\": { \"min_warm\": 2, \"max_concurrent\": 16, \"mem_limit\": \"64M\", \"cpu_limit\": 0.5 } },"
	"  \"snap\": { \"snapshot\": \"/var/snap\", \"vsock\": \"/tmp/s%u.sock\", \"port\": 1 } } }";

Test(serve_config, a_good_file_and_its_defaults)
{
	struct serve_config cfg;
	const struct serve_function *w, *s;
	char err[256] = "";

	cr_assert_eq(serve_config_parse(good, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cfg.api, "/tmp/s.sock");
	cr_expect_str_eq(cfg.tcp, "127.0.0.1:8080");
	cr_assert_eq(cfg.nfunctions, 2);
	w = serve_config_function(&cfg, "words");
	s = serve_config_function(&cfg, "snap");
	cr_assert(w && s && !serve_config_function(&cfg, "nope"));
	cr_expect_str_eq(w->kernel, "k");
	cr_expect_eq(w->mem, 128ULL << 20);
	cr_expect_eq(w->cpus, 1);
	cr_expect_eq(w->port, 8080);
	cr_expect_eq(w->ready_port, 9);
	cr_expect_eq(w->timeout_ms, 10000);
	cr_expect_eq(w->max_answer, 1u << 20);
	cr_expect_eq(w->pool.min_warm, 2);
	cr_expect_eq(w->pool.max_warm, 8);
	cr_expect_eq(w->pool.max_concurrent, 16);
	cr_expect_eq(w->pool.mem_limit, 64ULL << 20);
	cr_expect_eq(w->pool.cpu_limit, 0.5);
	cr_expect_str_eq(s->snapshot, "/var/snap");
	cr_expect_null(s->kernel);
	cr_expect_eq(s->pool.max_concurrent, 32);
	serve_config_free(&cfg);
	serve_config_free(&cfg); /* twice is harmless */
}

Test(serve_config, errors_name_the_key)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "[]", "a JSON object" },
		{ "{\"api\": \"a\", \"functions\": {}, \"x\": 1}", "x: no such setting" },
		{ "{\"functions\": {\"f\": {}}}", "api: missing" },
		{ "{\"api\": \"a\", \"functions\": {}}", "functions: an object of 1 to" },
		{ "{\"api\": \"a\", \"functions\": {\"Bad Name\": {}}}", "functions.Bad Name: a function's name" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9}}}",
		  "functions.f: give either \"kernel\"" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"snapshot\": \"s\", "
		  "\"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9}}}", "functions.f: give either" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"snapshot\": \"s\", \"mem\": \"1G\", "
		  "\"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9}}}", "functions.f.mem: goes with \"kernel\"" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"port\": 1}}}",
		  "functions.f.vsock: missing" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\"}}}",
		  "functions.f.port: missing" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\", \"port\": 0}}}",
		  "functions.f.port: an integer from 1" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9, "
		  "\"mem\": \"lots\"}}}", "functions.f.mem: a size" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9, "
		  "\"pool\": {\"min_warm\": 9, \"max_warm\": 2}}}}", "functions.f.pool.min_warm: 9 is more" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9, "
		  "\"pool\": {\"cpu_limit\": -1}}}}", "functions.f.pool.cpu_limit: a number of CPUs" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\", \"port\": 1, \"ready_port\": 9, "
		  "\"pool\": {\"typo\": 1}}}}", "functions.f.pool.typo: no such setting" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v\", \"port\": 1}}}",
		  "functions.f.vsock: needs \"%u\"" },
		{ "{\"api\": \"a\", \"functions\": {\"f\": {\"kernel\": \"k\", \"vsock\": \"v%u\", \"port\": 1}}}",
		  "functions.f.ready_port: missing" },
		{ "{\"api\": \"a\", \"api\": \"b\"}", "duplicate object key" },
		{ "{\"api\": \"a\", \"tcp\": \"0.0.0.0:8080\", \"functions\": {}}", "tcp: a loopback address" },
		{ "{\"api\": \"a\", \"tcp\": \"[::]:8080\", \"functions\": {}}", "tcp: a loopback address" },
		{ "{\"api\": \"a\", \"tcp\": \"127.0.0.1\", \"functions\": {}}", "tcp: a loopback address" },
		{ "{\"api\": \"a\", \"tcp\": \"127.0.0.1:65536\", \"functions\": {}}", "tcp: a loopback address" },
		{ "{\"api\": \"a\", \"tcp\": \"localhost:80x\", \"functions\": {}}", "tcp: a loopback address" },
		{ "{\"api\": ", "line 1" },
	};
	struct serve_config cfg;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(serve_config_parse(cases[i].text, &cfg, err, sizeof(err)), -EINVAL, "%s",
			     cases[i].text);
		cr_expect(strstr(err, cases[i].want), "%s: said '%s', not '%s'", cases[i].text, err,
			  cases[i].want);
		cr_expect_eq(cfg.nfunctions, 0);
		serve_config_free(&cfg);
	}
	cr_expect_eq(serve_config_load("/nonexistent/serve.json", &cfg, err, sizeof(err)), -ENOENT,
		     "%s", err);
}

Test(serve_config, loopback_addresses_for_tcp)
{
	static const char *const good_addrs[] = { "127.0.0.1:0", "127.1.2.3:65535", "[::1]:8080" };
	struct sockaddr_storage sa;
	socklen_t len;

	for (size_t i = 0; i < sizeof(good_addrs) / sizeof(good_addrs[0]); i++)
		cr_expect_eq(api_loopback_addr(good_addrs[i], &sa, &len), 0, "%s", good_addrs[i]);
	cr_expect_eq(api_loopback_addr("10.0.0.1:80", &sa, &len), -EINVAL);
	cr_expect_eq(api_loopback_addr(":80", &sa, &len), -EINVAL);
}
