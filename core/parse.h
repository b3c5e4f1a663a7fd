/* Parsing of the numbers people type: sizes and counts. */
#ifndef CORE_PARSE_H
#define CORE_PARSE_H

#include <stdint.h>

/*
 * A size such as "64M", "16G", "512MiB", "1073741824" (bytes, no suffix),
 * "2g": K, M, G, T are powers of 1024, optionally followed by "iB" or "B".
 * Returns 0, or -EINVAL (not a size) or -ERANGE (overflows 64 bits).
 */
int parse_size(const char *s, uint64_t *out);

/* A decimal count in [min, max]; returns 0, -EINVAL or -ERANGE. */
int parse_count(const char *s, unsigned min, unsigned max, unsigned *out);
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
