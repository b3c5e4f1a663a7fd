/*
 * The serverless pool of `vm-fork serve`: every function of a configuration
 * (server/serve_config.h) with its template and pool (server/fn_pool.h),
 * served on the control API's socket beside the control routes:
 *
 *   POST /v1/functions/NAME/invoke   the body goes to a fresh clone; its answer
 *                                    comes back as the response's body, with
 *                                    X-Clone-Id and Server-Timing (fork, deliver,
 *                                    answer, in ms)
 *   GET  /v1/functions               {"functions": {NAME: {"warm", "inflight",
 *                                    "invocations": {OUTCOME: n}, ...}}}
 *   GET  /metrics                    Prometheus text: invocations by outcome,
 *                                    fork/deliver/answer histograms, warm clones,
 *                                    forks, clones' private memory, fds and RSS
 *
 * An invocation's errors: 404 (no such function), 429 (max_concurrent or
 * the VMM's max_vms, named; with Retry-After), 502 (the guest closed,
 * refused or died without an answer, or answered too much), 503 (the server
 * is stopping), 504 (no answer within timeout_ms), 500 (the VMM failed);
 * each {"error": "..."}.
 */
#ifndef SERVER_FN_SERVER_H
#define SERVER_FN_SERVER_H

struct fn_server;
struct serve_config;
struct vmm;

/*
 * Start every function's template (booted until ready, or restored) and
 * pool, then serve cfg->api. console_dir: where templates' consoles go
 * (DIR/NAME.log), or NULL for none. cfg must outlive the server. 0, or the
 * first error (with a message) after undoing what was started.
 */
int fn_server_start(struct fn_server **out, struct vmm *vmm, const struct serve_config *cfg,
		    const char *console_dir);
/* Stop serving, remove every warm clone and template. NULL is ok. */
void fn_server_stop(struct fn_server *s);

#endif
