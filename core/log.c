#include <stdatomic.h>
#include <stdio.h>

#include "core/log.h"

/* The one process-wide setting: verbosity is a property of the process's stderr, not of a VM. */
static _Atomic int current_level = LOG_WARN;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;

	if ((int)level > current_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fputs per message so lines from vCPU threads do not interleave. */
	fprintf(stderr, "vm-fork: %s: %s\n", prefix[level], line);
}
