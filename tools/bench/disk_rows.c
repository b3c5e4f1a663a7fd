/*
 * The disk overlay's cost per clone (devices/disk_image.h), with a disk as
 * large as the column's RAM size (a sparse base file). No KVM: this is what
 * virtio-blk adds to a fork, measured on the disk image alone.
 *
 *  disk_fork         a clone's disk: its parent's top frozen (it wrote a
 *                    block since the last fork) and a new image over it.
 *  disk_first_write  a clone's first 4 KiB write: its top made (a memfd and
 *                    a bitmap) and the block written.
 *  disk_clone_mem    host memory per clone that wrote 64 KiB in 16 scattered
 *                    blocks: its overlay's file blocks plus the process's RSS
 *                    growth (the bitmap, touched only where written).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/disk_image.h"
#include "tools/bench/bench.h"

#define CLONE_WRITES 16

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	if (f)
		fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static int make_base(struct bench_ctx *ctx, uint64_t size, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/disk", ctx->tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

/* One clone of parent, timed; the parent first writes a block so that a layer freezes. */
static int fork_once(struct disk_image *parent, struct disk_image **child, uint64_t *ns)
{
	static const uint8_t block[DISK_BLOCK];
	struct disk_layer *view;
	uint64_t t;
	int ret = disk_image_write(parent, block, 0, DISK_BLOCK);

	if (ret < 0)
		return ret;
	t = now_ns();
	ret = disk_image_freeze(parent, &view);
	if (!ret)
		ret = disk_image_from(child, view, NULL);
	*ns = now_ns() - t;
	disk_layer_put(view);
	return ret;
}

static int scattered_writes(struct disk_image *img, unsigned seed, uint64_t *first_ns)
{
	uint8_t block[DISK_BLOCK];
	uint64_t nblocks = disk_image_size(img) / DISK_BLOCK;

	memset(block, (int)seed, sizeof(block));
	for (unsigned i = 0; i < CLONE_WRITES; i++) {
		uint64_t b = (seed * 2654435761u + i * 40503u) % nblocks, t = now_ns();
		int ret = disk_image_write(img, block, b * DISK_BLOCK, DISK_BLOCK);

		if (ret < 0)
			return ret;
		if (i == 0)
			*first_ns = now_ns() - t;
	}
	return 0;
}

static uint64_t overlay_kib(struct disk_image *img)
{
	return disk_image_private_bytes(img) / 1024;
}

/*
 * Clones come from one parent that goes on writing (so every fork freezes
 * a layer), up to DISK_MAX_DEPTH; then a new parent.
 */
static int measure(struct disk_image *root, unsigned n, struct samples *fork_s,
		   struct samples *write_s, double *kib_per_clone)
{
	struct disk_image **clones = calloc(n, sizeof(*clones)), *parent = NULL;
	long rss0 = rss_kib();
	uint64_t ns, first, overlay = 0;
	int ret = clones ? 0 : -ENOMEM;

	for (unsigned i = 0; !ret && i < n; i++) {
		if (!parent || disk_image_depth(parent) >= DISK_MAX_DEPTH - 1) {
			disk_image_close(parent);
			ret = fork_once(root, &parent, &ns);
		}
		if (!ret)
			ret = fork_once(parent, &clones[i], &ns);
		if (!ret)
			samples_add(fork_s, ns);
		if (!ret)
			ret = scattered_writes(clones[i], i + 1, &first);
		if (!ret)
			samples_add(write_s, first);
		if (!ret)
			overlay += overlay_kib(clones[i]);
	}
	*kib_per_clone = (double)(rss_kib() - rss0 + (long)overlay) / n;
	for (unsigned i = 0; clones && i < n; i++)
		disk_image_close(clones[i]);
	disk_image_close(parent);
	free(clones);
	return ret;
}

int bench_disk(struct bench_ctx *ctx, unsigned si)
{
	uint64_t size = ctx->cfg->sizes[si];
	unsigned n = ctx->cfg->quick ? 50 : 500;
	struct samples fork_s, write_s;
	struct disk_image *root;
	double kib;
	char path[128];
	int ret = make_base(ctx, size, path, sizeof(path));

	if (!ret)
		ret = disk_image_open(&root, path, NULL);
	if (ret < 0)
		return ret;
	ret = samples_init(&fork_s, n) ?: samples_init(&write_s, n);
	if (!ret)
		ret = measure(root, n, &fork_s, &write_s, &kib);
	if (!ret) {
		cell_set_samples(ctx, ROW_DISK_FORK, si, &fork_s);
		cell_set_samples(ctx, ROW_DISK_FIRST_WRITE, si, &write_s);
		cell_set(ctx, ROW_DISK_CLONE_MEM, si, n, kib, kib);
		cell_note(ctx, ROW_DISK_CLONE_MEM, si, "%u KiB written per clone",
			  CLONE_WRITES * DISK_BLOCK / 1024);
	}
	samples_free(&fork_s);
	samples_free(&write_s);
	disk_image_close(root);
	unlink(path);
	return ret;
}
