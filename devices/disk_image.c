/*
 * A copy-on-write disk in layers (devices/disk_image.h). An image holds two
 * references: top, the layer that takes its writes (NULL until its first
 * write after a freeze), and head, the frozen view under it. A top's below
 * is head. Until the first freeze the base itself is the top and head is
 * NULL. Overlays keep block b at byte b * DISK_BLOCK of their file, where the
 * base has it, so every layer is read at the disk's own offsets.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/disk_layer.h"

struct disk_image {
	pthread_mutex_t lock;
	struct disk_layer *top;
	struct disk_layer *head;
	uint64_t size;
	struct disk_opts opts;
	char overlay_dir[256];
};

int layer_pread(int fd, void *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* the file shrank under us */
		buf = (uint8_t *)buf + n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int layer_pwrite(int fd, const void *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const uint8_t *)buf + n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void layer_release(struct device_ref *ref)
{
	struct disk_layer *l = (struct disk_layer *)ref;

	if (l->fd >= 0)
		close(l->fd);
	free(l->bits);
	disk_layer_put(l->below);
	free(l);
}

/* A sparse file of size bytes: an O_TMPFILE in dir (gone when closed), else a memfd. */
static int overlay_file(const char *dir, uint64_t size)
{
	int fd = dir && *dir ? open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)
			     : memfd_create("vm-fork disk overlay", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

struct disk_layer *layer_alloc(uint64_t size, struct disk_layer *below)
{
	struct disk_layer *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ref.refs = 1;
	l->ref.release = layer_release;
	l->fd = -1;
	l->size = size;
	l->nblocks = disk_blocks(size);
	l->below = disk_layer_get(below);
	l->depth = below ? below->depth + 1 : 0;
	return l;
}

int layer_new(struct disk_layer **out, uint64_t size, const char *overlay_dir,
	      struct disk_layer *below)
{
	struct disk_layer *l = layer_alloc(size, below);
	int fd;

	if (!l)
		return -ENOMEM;
	l->bits = calloc(1, bitmap_bytes(l->nblocks));
	fd = l->bits ? overlay_file(overlay_dir, l->nblocks * DISK_BLOCK) : -ENOMEM;
	if (fd < 0) {
		disk_layer_put(l);
		return fd;
	}
	l->fd = fd;
	*out = l;
	return 0;
}

const struct disk_layer *layer_owner(const struct disk_layer *l, uint64_t block)
{
	while (!layer_has(l, block))
		l = l->below;
	return l;
}

struct disk_layer *disk_layer_get(struct disk_layer *view)
{
	device_ref_get(view ? &view->ref : NULL);
	return view;
}

void disk_layer_put(struct disk_layer *view)
{
	device_ref_put(view ? &view->ref : NULL);
}

struct device_ref *disk_layer_ref(struct disk_layer *view)
{
	return view ? &view->ref : NULL;
}

struct disk_layer *disk_layer_from_ref(struct device_ref *ref)
{
	return ref && ref->release == layer_release ? (struct disk_layer *)ref : NULL;
}

uint64_t disk_layer_size(const struct disk_layer *view)
{
	return view->size;
}

static struct disk_image *image_alloc(uint64_t size, const struct disk_opts *opts)
{
	struct disk_image *img = calloc(1, sizeof(*img));

	if (!img)
		return NULL;
	pthread_mutex_init(&img->lock, NULL);
	img->size = size;
	if (opts)
		img->opts = *opts;
	if (opts && opts->overlay_dir)
		snprintf(img->overlay_dir, sizeof(img->overlay_dir), "%s", opts->overlay_dir);
	img->opts.overlay_dir = img->overlay_dir;
	return img;
}

/* The base: its size is the file's end (a regular file or a block device). */
static int open_base(const char *path, bool ro, struct disk_layer **out)
{
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return -errno;
	end = lseek(fd, 0, SEEK_END);
	if (end <= 0) {
		int ret = end < 0 ? -errno : -EINVAL; /* an empty disk is no disk */

		close(fd);
		return ret;
	}
	*out = layer_alloc((uint64_t)end, NULL);
	if (!*out) {
		close(fd);
		return -ENOMEM;
	}
	(*out)->fd = fd;
	(*out)->frozen = ro;
	return 0;
}

int disk_image_open(struct disk_image **out, const char *path, const struct disk_opts *opts)
{
	struct disk_layer *base = NULL;
	int ret = open_base(path, opts && opts->ro, &base);

	if (ret < 0)
		return ret;
	*out = image_alloc(base->size, opts);
	if (!*out) {
		disk_layer_put(base);
		return -ENOMEM;
	}
	(*out)->top = base;
	return 0;
}

int disk_image_from(struct disk_image **out, struct disk_layer *view, const struct disk_opts *opts)
{
	if (!view || !view->frozen)
		return -EINVAL;
	*out = image_alloc(view->size, opts);
	if (!*out)
		return -ENOMEM;
	(*out)->head = disk_layer_get(view);
	return 0;
}

void disk_image_close(struct disk_image *img)
{
	if (!img)
		return;
	disk_layer_put(img->top);
	disk_layer_put(img->head);
	pthread_mutex_destroy(&img->lock);
	free(img);
}

uint64_t disk_image_size(const struct disk_image *img)
{
	return img->size;
}

bool disk_image_ro(const struct disk_image *img)
{
	return img->opts.ro;
}

unsigned disk_image_depth(struct disk_image *img)
{
	unsigned depth;

	pthread_mutex_lock(&img->lock);
	depth = img->head ? img->head->depth : 0;
	pthread_mutex_unlock(&img->lock);
	return depth;
}

uint64_t disk_image_private_bytes(struct disk_image *img)
{
	uint64_t bytes;

	pthread_mutex_lock(&img->lock);
	bytes = img->top && img->top->bits ? img->top->held * DISK_BLOCK : 0;
	pthread_mutex_unlock(&img->lock);
	return bytes;
}

static bool in_disk(const struct disk_image *img, uint64_t off, uint64_t len)
{
	return off <= img->size && len <= img->size - off;
}

/* Bytes of block b (the last one may be short). */
static uint64_t block_len(uint64_t size, uint64_t b)
{
	uint64_t start = b * DISK_BLOCK;

	return size - start < DISK_BLOCK ? size - start : DISK_BLOCK;
}

/* [off, off+len) from the view that ends at from: runs of blocks with one owner, one pread each. */
static int read_view(const struct disk_layer *from, uint8_t *buf, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t b = off / DISK_BLOCK, n = DISK_BLOCK - off % DISK_BLOCK;
		const struct disk_layer *l = layer_owner(from, b);
		int ret;

		while (n < len && layer_owner(from, b + (off % DISK_BLOCK + n) / DISK_BLOCK) == l)
			n += DISK_BLOCK;
		n = n < len ? n : len;
		ret = layer_pread(l->fd, buf, n, off);
		if (ret < 0)
			return ret;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

int disk_image_read(struct disk_image *img, void *buf, uint64_t off, uint64_t len)
{
	int ret;

	if (!in_disk(img, off, len))
		return -ERANGE;
	if (!len)
		return 0;
	pthread_mutex_lock(&img->lock);
	ret = read_view(img->top ? img->top : img->head, buf, off, len);
	pthread_mutex_unlock(&img->lock);
	return ret;
}

static void set_held(struct disk_layer *l, uint64_t first, uint64_t end)
{
	for (uint64_t b = first; b < end; b++) {
		if (layer_has(l, b))
			continue;
		l->bits[b / 64] |= 1ull << (b % 64);
		l->held++;
	}
}

/* The top, made on the first write after a freeze. */
static int ensure_top(struct disk_image *img)
{
	return img->top ? 0 : layer_new(&img->top, img->size, img->opts.overlay_dir, img->head);
}

/* Whether the top may take the blocks of [off, off+len) it does not hold yet. */
static int room_for(const struct disk_image *img, uint64_t off, uint64_t len)
{
	uint64_t more = 0, max = img->opts.max_private / DISK_BLOCK;

	if (!img->opts.max_private)
		return 0;
	for (uint64_t b = off / DISK_BLOCK; b < disk_blocks(off + len); b++)
		more += !layer_has(img->top, b);
	return img->top->held + more > max ? -ENOSPC : 0;
}

/* Part of block b from buf: the whole block read from below, changed, written whole. */
static int write_partial(struct disk_image *img, const uint8_t *buf, uint64_t off, uint64_t n)
{
	uint64_t b = off / DISK_BLOCK, start = b * DISK_BLOCK, blen = block_len(img->size, b);
	uint8_t block[DISK_BLOCK];
	int ret;

	if (layer_has(img->top, b))
		return layer_pwrite(img->top->fd, buf, n, off);
	ret = read_view(img->top, block, start, blen);
	if (ret < 0)
		return ret;
	memcpy(block + (off - start), buf, n);
	ret = layer_pwrite(img->top->fd, block, blen, start);
	if (!ret)
		set_held(img->top, b, b + 1);
	return ret;
}

/*
 * Into the top overlay: whole blocks in runs (a block counts as whole when
 * the write covers it to the disk's end), the ends read-modify-written. A
 * block is marked held only once all of it was written.
 */
static int write_overlay(struct disk_image *img, const uint8_t *buf, uint64_t off, uint64_t len)
{
	int ret = ensure_top(img);

	if (!ret)
		ret = room_for(img, off, len);
	while (!ret && len) {
		uint64_t run = off % DISK_BLOCK ? 0 : len / DISK_BLOCK * DISK_BLOCK;
		uint64_t n;

		if (!(off % DISK_BLOCK) && off + len == img->size)
			run = len;
		if (run) {
			ret = layer_pwrite(img->top->fd, buf, run, off);
			if (!ret)
				set_held(img->top, off / DISK_BLOCK, disk_blocks(off + run));
			n = run;
		} else {
			n = DISK_BLOCK - off % DISK_BLOCK;
			n = n < len ? n : len;
			ret = write_partial(img, buf, off, n);
		}
		buf += n;
		off += n;
		len -= n;
	}
	return ret;
}

int disk_image_write(struct disk_image *img, const void *buf, uint64_t off, uint64_t len)
{
	int ret;

	if (!in_disk(img, off, len))
		return -ERANGE;
	if (img->opts.ro)
		return -EROFS;
	if (!len)
		return 0;
	pthread_mutex_lock(&img->lock);
	/* The base takes the writes only until it was first frozen. */
	if (img->top && !img->top->bits)
		ret = layer_pwrite(img->top->fd, buf, len, off);
	else
		ret = write_overlay(img, buf, off, len);
	pthread_mutex_unlock(&img->lock);
	return ret;
}

int disk_image_flush(struct disk_image *img)
{
	int ret = 0;

	pthread_mutex_lock(&img->lock);
	/* Overlays live as long as their VM (a snapshot keeps them): only the base lasts. */
	if (img->top && !img->top->bits && !img->opts.ro && fdatasync(img->top->fd) < 0)
		ret = -errno;
	pthread_mutex_unlock(&img->lock);
	return ret;
}

/*
 * The base, frozen: from now on it is read through a read-only descriptor of
 * the same open file, so the kernel refuses any write a bug might still try.
 * Where /proc is missing the read-write one stays, and frozen alone guards it
 * (no path writes a frozen layer).
 */
static void freeze_base(struct disk_layer *base)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", base->fd);
	fd = base->frozen ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(base->fd);
		base->fd = fd;
	}
	base->frozen = true;
}

static int freeze_locked(struct disk_image *img)
{
	struct disk_layer *top = img->top;

	if (!top || (top->bits && !top->held))
		return 0; /* nothing written since the last freeze: the same view */
	if (top->depth > DISK_MAX_DEPTH) {
		pr_err("disk: %u layers deep already: not frozen again (at most %d)",
		       top->depth - 1, DISK_MAX_DEPTH);
		return -EMLINK;
	}
	if (!top->bits)
		freeze_base(top);
	top->frozen = true;
	disk_layer_put(img->head); /* top keeps its own reference as below */
	img->head = top;
	img->top = NULL;
	return 0;
}

int disk_image_freeze(struct disk_image *img, struct disk_layer **view)
{
	int ret;

	pthread_mutex_lock(&img->lock);
	ret = freeze_locked(img);
	*view = ret < 0 ? NULL : disk_layer_get(img->head);
	pthread_mutex_unlock(&img->lock);
	return ret;
}

static bool in_chain(const struct disk_layer *l, const struct disk_layer *view)
{
	for (; l; l = l->below)
		if (l == view)
			return true;
	return false;
}

int disk_image_reset(struct disk_image *img, struct disk_layer *view)
{
	int ret = 0;

	pthread_mutex_lock(&img->lock);
	if (!view || !in_chain(img->head, view)) {
		ret = -EINVAL;
	} else {
		disk_layer_put(img->top);
		img->top = NULL;
		disk_layer_get(view);
		disk_layer_put(img->head);
		img->head = view;
	}
	pthread_mutex_unlock(&img->lock);
	return ret;
}
