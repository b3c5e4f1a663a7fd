/* File work for snapshot directories: sparse copies, checked range lists, atomic commit. */
#ifndef FORK_SNAPDIR_IO_H
#define FORK_SNAPDIR_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/memory.h"

/* Create dir/name for writing (it must not exist); returns the fd or -errno. */
int snapio_create(const char *dir, const char *name);
int snapio_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Copy [pos, pos+len) from in to out, leaving all-zero pages as holes. */
int snapio_copy_nonzero(int in, int out, uint8_t *buf, off_t pos, size_t len);
/* Write a whole small file and fsync it. */
int snapio_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Read a whole small file (at most max bytes) into a malloc'd buffer. */
int snapio_read_file(const char *dir, const char *name, size_t max, void **data, size_t *len);
/* A list of page ranges with a magic, a count and a CRC32. */
int snapio_write_ranges(const char *dir, const char *name, const struct mem_ranges *r);
int snapio_read_ranges(const char *dir, const char *name, uint64_t mem_size,
		       struct mem_ranges *r);
/* fsync tmp, rename it to dir, fsync dir's parent: all of it or nothing. */
int snapio_commit_dir(const char *tmp, const char *dir);
void snapio_remove_dir(const char *dir);
/* Bytes of data (not holes) in fd's first size bytes; 0 when skip. */
uint64_t snapio_data_bytes(int fd, uint64_t size, int skip);

#endif
