/* Inside the functions' server (server/fn_server.c, its metrics in fn_metrics.c). */
#ifndef SERVER_FN_SERVER_INT_H
#define SERVER_FN_SERVER_INT_H

#include "server/serve_config.h"

struct api_server;
struct fn_pool;
struct vmm;

struct fn_server {
	struct vmm *vmm;
	struct api_server *api;
	unsigned npools;
	struct fn_pool *pools[SERVE_FUNCTIONS_MAX];
};

/* GET /metrics: the text (malloc'd), or NULL when out of memory. */
char *fn_server_metrics(struct fn_server *s);

#endif
