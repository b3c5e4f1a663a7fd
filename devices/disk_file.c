/*
 * A disk's overlays in a snapshot's folder (devices/disk_image.h):
 * NAME.overlay, the blocks above the base flattened into one sparse file
 * (each at its own offset; blocks nobody wrote stay holes), and NAME.map, a
 * header and the bitmap of the blocks it holds, with a CRC32. A zero block a
 * guest wrote must still hide the base's block, so the bitmap, not the
 * file's holes, says what the overlay holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"
#include "devices/disk_layer.h"

#define MAP_MAGIC "VMFDISK1"

struct map_header {
	char magic[8];
	uint32_t block;            /* DISK_BLOCK */
	uint32_t crc;              /* of the bitmap that follows */
	uint64_t size;             /* the disk's bytes: the base must have as many */
	uint64_t nblocks;
};

static int open_in(const char *dir, const char *name, const char *ext, int flags)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* The blocks any overlay of view holds: what the flattened overlay will hold. */
static uint64_t *union_bits(const struct disk_layer *view)
{
	uint64_t words = bitmap_bytes(view->nblocks) / 8;
	uint64_t *bits = calloc(words ? words : 1, 8);

	for (const struct disk_layer *l = view; bits && l->bits; l = l->below)
		for (uint64_t w = 0; w < words; w++)
			bits[w] |= l->bits[w];
	return bits;
}

/* Copy [off, off+len) of view into out, in chunks: each block from its owner. */
static int copy_blocks(const struct disk_layer *view, int out, uint8_t *buf, uint64_t off,
		       uint64_t len)
{
	for (uint64_t at = off; at < off + len; at += DISK_BLOCK) {
		const struct disk_layer *l = layer_owner(view, at / DISK_BLOCK);
		int ret = layer_pread(l->fd, buf, DISK_BLOCK, at);

		if (!ret)
			ret = layer_pwrite(out, buf, DISK_BLOCK, at);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int write_overlay(const struct disk_layer *view, const uint64_t *bits, int out)
{
	uint8_t *buf = malloc(DISK_BLOCK);
	int ret = buf ? 0 : -ENOMEM;

	if (!ret && ftruncate(out, (off_t)(view->nblocks * DISK_BLOCK)) < 0)
		ret = -errno;
	for (uint64_t b = 0; !ret && b < view->nblocks; b++)
		if (bits[b / 64] >> (b % 64) & 1)
			ret = copy_blocks(view, out, buf, b * DISK_BLOCK, DISK_BLOCK);
	if (!ret && fsync(out) < 0)
		ret = -errno;
	free(buf);
	return ret;
}

static int write_map(const struct disk_layer *view, const uint64_t *bits, int out)
{
	uint64_t len = bitmap_bytes(view->nblocks);
	struct map_header h = {
		.block = DISK_BLOCK, .size = view->size, .nblocks = view->nblocks,
		.crc = (uint32_t)crc32(0, (const Bytef *)bits, (uInt)len),
	};
	int ret;

	memcpy(h.magic, MAP_MAGIC, sizeof(h.magic));
	ret = layer_pwrite(out, &h, sizeof(h), 0);
	if (!ret)
		ret = layer_pwrite(out, bits, len, sizeof(h));
	if (!ret && fsync(out) < 0)
		ret = -errno;
	return ret;
}

static const struct disk_layer *base_of(const struct disk_layer *view)
{
	while (view->below)
		view = view->below;
	return view;
}

int disk_layer_export(struct disk_layer *view, const char *dir, const char *name)
{
	uint64_t *bits = union_bits(view);
	int data = -1, map = -1, ret = bits ? 0 : -ENOMEM;

	/* The snapshot stands on the base as it is now: what was written to it must last. */
	if (!ret && fsync(base_of(view)->fd) < 0)
		ret = -errno;
	if (!ret)
		ret = data = open_in(dir, name, "overlay", O_WRONLY | O_CREAT | O_EXCL);
	if (ret >= 0)
		ret = map = open_in(dir, name, "map", O_WRONLY | O_CREAT | O_EXCL);
	if (ret >= 0)
		ret = write_overlay(view, bits, data);
	if (!ret)
		ret = write_map(view, bits, map);
	if (data >= 0)
		close(data);
	if (map >= 0)
		close(map);
	free(bits);
	return ret < 0 ? ret : 0;
}

/* The bitmap of NAME.map, checked against the base's size. */
static int read_map(int fd, uint64_t size, struct disk_layer *l)
{
	struct map_header h;
	uint64_t len = bitmap_bytes(disk_blocks(size));
	int ret = layer_pread(fd, &h, sizeof(h), 0);

	if (!ret && (memcmp(h.magic, MAP_MAGIC, sizeof(h.magic)) || h.block != DISK_BLOCK ||
		     h.nblocks != disk_blocks(size)))
		ret = -EBADMSG;
	if (!ret && h.size != size) {
		pr_err("disk: the base is %llu bytes, the snapshot's disk was %llu",
		       (unsigned long long)size, (unsigned long long)h.size);
		ret = -EBADMSG;
	}
	l->bits = ret ? NULL : calloc(1, len ? len : 8);
	if (!ret && !l->bits)
		ret = -ENOMEM;
	if (!ret)
		ret = layer_pread(fd, l->bits, len, sizeof(h));
	if (!ret && (uint32_t)crc32(0, (const Bytef *)l->bits, (uInt)len) != h.crc)
		ret = -EBADMSG;
	for (uint64_t b = 0; !ret && b < l->nblocks; b++)
		l->held += layer_has(l, b);
	return ret;
}

static int open_overlay(struct disk_layer *l, const char *dir, const char *name)
{
	struct stat st;
	int map = open_in(dir, name, "map", O_RDONLY), ret = map < 0 ? map : 0;

	if (!ret)
		ret = read_map(map, l->size, l);
	if (map >= 0)
		close(map);
	if (!ret)
		ret = l->fd = open_in(dir, name, "overlay", O_RDONLY);
	/* A short file would turn reads of its last blocks into I/O errors: refuse it now. */
	if (ret >= 0 && (fstat(l->fd, &st) < 0 || (uint64_t)st.st_size != l->nblocks * DISK_BLOCK))
		ret = -EBADMSG;
	return ret < 0 ? ret : 0;
}

int disk_layer_import(struct disk_layer **out, const char *base_path, const char *dir,
		      const char *name)
{
	struct disk_opts ro = { .ro = true };
	struct disk_image *img;
	struct disk_layer *base, *l;
	int ret = disk_image_open(&img, base_path, &ro);

	if (ret < 0)
		return ret;
	ret = disk_image_freeze(img, &base);
	disk_image_close(img);
	if (ret < 0)
		return ret;
	l = layer_alloc(base->size, base);
	disk_layer_put(base);
	if (!l)
		return -ENOMEM;
	ret = open_overlay(l, dir, name);
	if (ret < 0) {
		pr_err("disk: %s/%s.overlay: %s", dir, name, strerror(-ret));
		disk_layer_put(l);
		return ret;
	}
	l->frozen = true;
	*out = l;
	return 0;
}
