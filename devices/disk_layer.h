/*
 * The layers of a disk image (devices/disk_image.h), shared by its two files:
 * disk_image.c (reads, writes, freezing) and disk_file.c (snapshots on disk).
 */
#ifndef DEVICES_DISK_LAYER_H
#define DEVICES_DISK_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/device.h"
#include "devices/disk_image.h"

struct disk_layer {
	struct device_ref ref;
	struct disk_layer *below;  /* a reference; NULL for the base */
	int fd;
	uint64_t size;             /* the disk's bytes, the same in every layer */
	uint64_t nblocks;
	uint64_t *bits;            /* blocks held; NULL for the base, which holds all */
	uint64_t held;             /* blocks held */
	unsigned depth;            /* overlays from the base up to this one (the base: 0) */
	bool frozen;               /* never written again */
};

static inline bool layer_has(const struct disk_layer *l, uint64_t block)
{
	return !l->bits || (l->bits[block / 64] >> (block % 64) & 1);
}

static inline uint64_t disk_blocks(uint64_t size)
{
	return size / DISK_BLOCK + (size % DISK_BLOCK != 0);
}

static inline uint64_t bitmap_bytes(uint64_t nblocks)
{
	return (nblocks + 63) / 64 * 8;
}

/* A layer (one reference) over below, with no file or bitmap yet. */
struct disk_layer *layer_alloc(uint64_t size, struct disk_layer *below);
/* A new overlay (one reference) over below, with its sparse file (overlay_dir: disk_opts). */
int layer_new(struct disk_layer **out, uint64_t size, const char *overlay_dir,
	      struct disk_layer *below);
/* The highest layer from l down that holds block. */
const struct disk_layer *layer_owner(const struct disk_layer *l, uint64_t block);
/* pread/pwrite of exactly len bytes: 0 or -errno (-EIO for a short transfer). */
int layer_pread(int fd, void *buf, uint64_t len, uint64_t off);
int layer_pwrite(int fd, const void *buf, uint64_t len, uint64_t off);

#endif
