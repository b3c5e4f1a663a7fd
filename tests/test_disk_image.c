/*
 * The layered copy-on-write disk (devices/disk_image.h), without KVM: writes
 * and reads across layers, partial blocks, forks that stay apart, resets to a
 * mark, bounds, full overlays, the depth bound, snapshots' files, and random
 * operations checked against flat copies in memory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "devices/disk_image.h"
#include "tests/harness.h"

#define BLK DISK_BLOCK

struct base_file {
	char path[64];
	uint64_t size;
	uint8_t *data;   /* what the file held when made */
};

static void fill(uint8_t *p, uint64_t len, unsigned seed)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 12));
}

static void make_base(struct base_file *b, uint64_t size)
{
	int fd;

	snprintf(b->path, sizeof(b->path), "/tmp/vmfork-disk-XXXXXX");
	fd = mkstemp(b->path);
	cr_assert_geq(fd, 0);
	b->size = size;
	b->data = malloc(size);
	fill(b->data, size, 1);
	cr_assert_eq(pwrite(fd, b->data, size, 0), (ssize_t)size);
	close(fd);
}

/* The file's bytes now. */
static uint8_t *file_bytes(const struct base_file *b)
{
	uint8_t *p = malloc(b->size);
	int fd = open(b->path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, p, b->size, 0), (ssize_t)b->size);
	close(fd);
	return p;
}

static void assert_file_is(const struct base_file *b, const uint8_t *want)
{
	uint8_t *now = file_bytes(b);

	cr_assert(!memcmp(now, want, b->size), "the base file changed");
	free(now);
}

static void drop_base(struct base_file *b)
{
	unlink(b->path);
	free(b->data);
}

static void assert_reads(struct disk_image *img, uint64_t off, uint64_t len, const uint8_t *want)
{
	uint8_t *got = malloc(len ? len : 1);

	cr_assert_eq(disk_image_read(img, got, off, len), 0);
	for (uint64_t i = 0; i < len; i++)
		cr_assert_eq(got[i], want[i], "byte %llu: %#x, not %#x", (unsigned long long)(off + i),
			     got[i], want[i]);
	free(got);
}

static struct disk_image *open_rw(const struct base_file *b)
{
	struct disk_image *img;

	cr_assert_eq(disk_image_open(&img, b->path, NULL), 0);
	cr_assert_eq(disk_image_size(img), b->size);
	return img;
}

static struct disk_image *fork_of(struct disk_image *parent)
{
	struct disk_image *child;
	struct disk_layer *view;

	cr_assert_eq(disk_image_freeze(parent, &view), 0);
	cr_assert_eq(disk_image_from(&child, view, NULL), 0);
	disk_layer_put(view);
	return child;
}

Test(disk_image, writes_go_to_the_base_until_the_first_freeze)
{
	struct base_file b;
	uint8_t buf[3000];
	struct disk_image *img;
	struct disk_layer *view;

	make_base(&b, 64 * BLK);
	img = open_rw(&b);
	fill(buf, sizeof(buf), 9);
	cr_assert_eq(disk_image_write(img, buf, 7000, sizeof(buf)), 0);
	memcpy(b.data + 7000, buf, sizeof(buf));
	assert_file_is(&b, b.data);
	cr_assert_eq(disk_image_flush(img), 0);
	cr_assert_eq(disk_image_private_bytes(img), 0);
	cr_assert_eq(disk_image_freeze(img, &view), 0);
	fill(buf, sizeof(buf), 10);
	cr_assert_eq(disk_image_write(img, buf, 7000, sizeof(buf)), 0);
	assert_file_is(&b, b.data);
	assert_reads(img, 7000, sizeof(buf), buf);
	/* Two blocks touched, each held whole. */
	cr_assert_eq(disk_image_private_bytes(img), 2 * BLK);
	disk_layer_put(view);
	disk_image_close(img);
	drop_base(&b);
}

Test(disk_image, reads_take_each_block_from_the_highest_layer)
{
	struct base_file b;
	uint8_t *want, blk[BLK];
	struct disk_image *img;
	struct disk_layer *v1, *v2;

	make_base(&b, 16 * BLK);
	want = malloc(b.size);
	memcpy(want, b.data, b.size);
	img = open_rw(&b);
	cr_assert_eq(disk_image_freeze(img, &v1), 0);
	fill(blk, BLK, 2); /* layer 1: blocks 1 and 2 */
	cr_assert_eq(disk_image_write(img, blk, 1 * BLK, BLK), 0);
	cr_assert_eq(disk_image_write(img, blk, 2 * BLK, BLK), 0);
	memcpy(want + BLK, blk, BLK);
	memcpy(want + 2 * BLK, blk, BLK);
	cr_assert_eq(disk_image_freeze(img, &v2), 0);
	fill(blk, BLK, 3); /* layer 2: blocks 2 and 3 */
	cr_assert_eq(disk_image_write(img, blk, 2 * BLK, BLK), 0);
	cr_assert_eq(disk_image_write(img, blk, 3 * BLK, BLK), 0);
	memcpy(want + 2 * BLK, blk, BLK);
	memcpy(want + 3 * BLK, blk, BLK);
	cr_assert_eq(disk_image_depth(img), 1, "layer 1 frozen, layer 2 the top");
	/* One read across base, layer 1, layer 2 and the top. */
	assert_reads(img, 0, b.size, want);
	assert_reads(img, BLK - 100, 3 * BLK + 200, want + BLK - 100);
	assert_file_is(&b, b.data);
	disk_layer_put(v1);
	disk_layer_put(v2);
	disk_image_close(img);
	free(want);
	drop_base(&b);
}

Test(disk_image, partial_blocks_keep_the_rest_of_the_block)
{
	struct base_file b;
	uint8_t *want, buf[100];
	struct disk_image *img;
	struct disk_image *child;

	make_base(&b, 8 * BLK);
	want = malloc(b.size);
	memcpy(want, b.data, b.size);
	img = open_rw(&b);
	child = fork_of(img);
	fill(buf, sizeof(buf), 4);
	/* Straddles blocks 0 and 1; then again inside a block the top holds already. */
	cr_assert_eq(disk_image_write(child, buf, BLK - 50, sizeof(buf)), 0);
	memcpy(want + BLK - 50, buf, sizeof(buf));
	cr_assert_eq(disk_image_write(child, buf, BLK + 1000, 10), 0);
	memcpy(want + BLK + 1000, buf, 10);
	cr_assert_eq(disk_image_write(child, buf, 5 * BLK + 1, 1), 0);
	memcpy(want + 5 * BLK + 1, buf, 1);
	assert_reads(child, 0, b.size, want);
	cr_assert_eq(disk_image_private_bytes(child), 3 * BLK);
	assert_reads(img, 0, b.size, b.data);
	disk_image_close(child);
	disk_image_close(img);
	free(want);
	drop_base(&b);
}

Test(disk_image, forks_keep_their_writes_apart)
{
	struct base_file b;
	uint8_t p[BLK], c[BLK], g[BLK];
	struct disk_image *parent, *child, *grandchild;

	make_base(&b, 32 * BLK);
	parent = open_rw(&b);
	child = fork_of(parent);
	fill(p, BLK, 5);
	fill(c, BLK, 6);
	fill(g, BLK, 7);
	cr_assert_eq(disk_image_write(parent, p, 7 * BLK, BLK), 0);
	cr_assert_eq(disk_image_write(child, c, 7 * BLK, BLK), 0);
	grandchild = fork_of(child);
	cr_assert_eq(disk_image_write(grandchild, g, 7 * BLK + 10, 20), 0);
	assert_reads(parent, 7 * BLK, BLK, p);
	assert_reads(child, 7 * BLK, BLK, c);
	memcpy(c + 10, g, 20);
	assert_reads(grandchild, 7 * BLK, BLK, c);
	assert_reads(grandchild, 8 * BLK, BLK, b.data + 8 * BLK);
	/* The parent can close first: its frozen layer lives on in its children. */
	disk_image_close(parent);
	assert_reads(grandchild, 7 * BLK, BLK, c);
	assert_file_is(&b, b.data);
	disk_image_close(child);
	disk_image_close(grandchild);
	drop_base(&b);
}

Test(disk_image, a_reset_drops_everything_since_the_mark)
{
	struct base_file b;
	uint8_t a[BLK], x[BLK];
	struct disk_image *img, *child;
	struct disk_layer *mark, *other;

	make_base(&b, 16 * BLK);
	img = open_rw(&b);
	child = fork_of(img);
	fill(a, BLK, 11);
	fill(x, BLK, 12);
	cr_assert_eq(disk_image_write(img, a, 3 * BLK, BLK), 0);
	cr_assert_eq(disk_image_freeze(img, &mark), 0);
	cr_assert_eq(disk_image_write(img, x, 3 * BLK, BLK), 0);
	cr_assert_eq(disk_image_write(img, x, 4 * BLK, BLK), 0);
	disk_image_close(fork_of(img)); /* a fork after the mark: one more layer */
	cr_assert_eq(disk_image_write(img, x, 5 * BLK, BLK), 0);
	cr_assert_eq(disk_image_reset(img, mark), 0);
	assert_reads(img, 3 * BLK, BLK, a);
	assert_reads(img, 4 * BLK, 2 * BLK, b.data + 4 * BLK);
	cr_assert_eq(disk_image_private_bytes(img), 0);
	/* Again, after more writes: a mark serves many resets. */
	cr_assert_eq(disk_image_write(img, x, 3 * BLK, 7), 0);
	cr_assert_eq(disk_image_reset(img, mark), 0);
	assert_reads(img, 3 * BLK, BLK, a);
	/* A view from another image is no mark of this one. */
	cr_assert_eq(disk_image_write(child, x, 0, 1), 0);
	cr_assert_eq(disk_image_freeze(child, &other), 0);
	cr_assert_eq(disk_image_reset(img, other), -EINVAL);
	disk_layer_put(other);
	disk_layer_put(mark);
	disk_image_close(child);
	disk_image_close(img);
	drop_base(&b);
}

Test(disk_image, requests_past_the_end_are_refused)
{
	struct base_file b;
	uint8_t buf[2 * BLK] = { 0 };
	struct disk_image *img, *child;

	make_base(&b, 4 * BLK);
	img = open_rw(&b);
	cr_assert_eq(disk_image_read(img, buf, 4 * BLK - 1, 2), -ERANGE);
	cr_assert_eq(disk_image_write(img, buf, 4 * BLK, 1), -ERANGE);
	cr_assert_eq(disk_image_read(img, buf, UINT64_MAX - 10, 20), -ERANGE);
	cr_assert_eq(disk_image_write(img, buf, 1, UINT64_MAX), -ERANGE);
	cr_assert_eq(disk_image_read(img, buf, 4 * BLK, 0), 0);
	child = fork_of(img);
	cr_assert_eq(disk_image_write(child, buf, 3 * BLK, 2 * BLK), -ERANGE);
	cr_assert_eq(disk_image_private_bytes(child), 0, "a refused write wrote");
	cr_assert_eq(disk_image_write(child, buf, 3 * BLK, BLK), 0);
	assert_file_is(&b, b.data);
	disk_image_close(child);
	disk_image_close(img);
	drop_base(&b);
}

Test(disk_image, a_size_not_a_multiple_of_512_has_its_tail)
{
	struct base_file b;
	uint8_t buf[BLK], *want;
	struct disk_image *img, *child;
	uint64_t size = 3 * BLK + 777;

	make_base(&b, size);
	want = malloc(size);
	memcpy(want, b.data, size);
	img = open_rw(&b);
	child = fork_of(img);
	fill(buf, sizeof(buf), 13);
	/* The last block is 777 bytes: written in part, then to the very end. */
	cr_assert_eq(disk_image_write(child, buf, 3 * BLK + 100, 50), 0);
	memcpy(want + 3 * BLK + 100, buf, 50);
	assert_reads(child, 0, size, want);
	cr_assert_eq(disk_image_write(child, buf, 3 * BLK, 777), 0);
	memcpy(want + 3 * BLK, buf, 777);
	cr_assert_eq(disk_image_write(child, buf, size - 1, 1), 0);
	want[size - 1] = buf[0];
	cr_assert_eq(disk_image_write(child, buf, size, 1), -ERANGE);
	assert_reads(child, 0, size, want);
	assert_reads(img, 0, size, b.data);
	/* Before any freeze the base takes the tail; its size stays. */
	disk_image_close(child);
	disk_image_close(img);
	img = open_rw(&b);
	cr_assert_eq(disk_image_write(img, buf, size - 10, 10), 0);
	memcpy(b.data + size - 10, buf, 10);
	assert_file_is(&b, b.data);
	disk_image_close(img);
	free(want);
	drop_base(&b);
}

Test(disk_image, a_read_only_disk_takes_no_write)
{
	struct base_file b;
	struct disk_opts ro = { .ro = true };
	struct disk_image *img;
	uint8_t buf[16] = { 1 };

	make_base(&b, 4 * BLK);
	cr_assert_eq(disk_image_open(&img, b.path, &ro), 0);
	cr_assert(disk_image_ro(img));
	cr_assert_eq(disk_image_write(img, buf, 0, sizeof(buf)), -EROFS);
	assert_reads(img, 0, b.size, b.data);
	disk_image_close(img);
	drop_base(&b);
}

/* A top that may not grow (a bound of 2 blocks) refuses the write whole: nothing changes. */
Test(disk_image, a_full_overlay_refuses_and_keeps_its_data)
{
	struct base_file b;
	struct disk_opts bounded = { .max_private = 2 * BLK };
	struct disk_image *img, *child;
	struct disk_layer *view;
	uint8_t a[2 * BLK], x[3 * BLK];

	make_base(&b, 8 * BLK);
	img = open_rw(&b);
	cr_assert_eq(disk_image_freeze(img, &view), 0);
	cr_assert_eq(disk_image_from(&child, view, &bounded), 0);
	fill(a, sizeof(a), 14);
	fill(x, sizeof(x), 15);
	cr_assert_eq(disk_image_write(child, a, 0, sizeof(a)), 0);
	cr_assert_eq(disk_image_write(child, x, BLK, 2 * BLK), -ENOSPC);
	cr_assert_eq(disk_image_write(child, x, 100, 200), 0, "inside held blocks it still writes");
	memcpy(a + 100, x, 200);
	assert_reads(child, 0, 2 * BLK, a);
	assert_reads(child, 2 * BLK, 6 * BLK, b.data + 2 * BLK);
	disk_layer_put(view);
	disk_image_close(child);
	disk_image_close(img);
	drop_base(&b);
}

/* The same when the file system says no: here the file size limit (EFBIG). */
Test(disk_image, an_overlay_that_cannot_grow_returns_the_error)
{
	struct base_file b;
	struct disk_image *img, *child;
	struct rlimit lim = { 2 * BLK, RLIM_INFINITY };
	uint8_t a[BLK], x[BLK];

	make_base(&b, 8 * BLK);
	img = open_rw(&b);
	child = fork_of(img);
	fill(a, BLK, 16);
	fill(x, BLK, 17);
	cr_assert_eq(disk_image_write(child, a, 0, BLK), 0); /* the top exists, its file sized */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	cr_assert_eq(disk_image_write(child, x, 5 * BLK, BLK), -EFBIG);
	cr_assert_eq(disk_image_write(child, x, 5 * BLK + 10, 10), -EFBIG);
	cr_assert_eq(disk_image_write(child, x, BLK, BLK), 0, "below the limit it writes");
	assert_reads(child, 0, BLK, a);
	assert_reads(child, BLK, BLK, x);
	assert_reads(child, 5 * BLK, BLK, b.data + 5 * BLK);
	cr_assert_eq(disk_image_private_bytes(child), 2 * BLK);
	disk_image_close(child);
	disk_image_close(img);
	drop_base(&b);
}

Test(disk_image, chains_stop_at_the_depth_bound)
{
	struct base_file b;
	struct disk_image *img;
	struct disk_layer *view;
	uint8_t one = 1;

	make_base(&b, 4 * BLK);
	img = open_rw(&b);
	cr_assert_eq(disk_image_freeze(img, &view), 0); /* the base: no overlay yet */
	disk_layer_put(view);
	for (unsigned i = 0; i < DISK_MAX_DEPTH; i++) {
		cr_assert_eq(disk_image_write(img, &one, i, 1), 0);
		cr_assert_eq(disk_image_freeze(img, &view), 0, "freeze %u", i);
		disk_layer_put(view);
	}
	cr_assert_eq(disk_image_depth(img), DISK_MAX_DEPTH);
	/* Nothing written: the same view again, no deeper. */
	cr_assert_eq(disk_image_freeze(img, &view), 0);
	disk_layer_put(view);
	cr_assert_eq(disk_image_write(img, &one, 100, 1), 0);
	cr_assert_eq(disk_image_freeze(img, &view), -EMLINK);
	cr_assert_null(view);
	cr_assert_eq(disk_image_depth(img), DISK_MAX_DEPTH);
	disk_image_close(img);
	drop_base(&b);
}

static void make_dir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/vmfork-disksnap-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/disk.overlay", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/disk.map", dir);
	unlink(path);
	rmdir(dir);
}

Test(disk_image, a_snapshot_keeps_the_overlays_flattened)
{
	struct base_file b;
	struct disk_image *img, *back;
	struct disk_layer *view, *imported;
	uint8_t *want, buf[BLK] = { 0 };
	char dir[64];

	make_base(&b, 10 * BLK + 300);
	want = malloc(b.size);
	img = open_rw(&b);
	fill(buf, BLK, 18);
	cr_assert_eq(disk_image_write(img, buf, 0, 100), 0); /* into the base */
	memcpy(b.data, buf, 100);
	disk_image_close(fork_of(img));
	cr_assert_eq(disk_image_write(img, buf, 2 * BLK, BLK), 0);
	disk_image_close(fork_of(img));
	memset(buf, 0, BLK); /* a zero block written must still hide the base's */
	cr_assert_eq(disk_image_write(img, buf, 3 * BLK, BLK), 0);
	cr_assert_eq(disk_image_write(img, b.data, 10 * BLK + 10, 200), 0);
	cr_assert_eq(disk_image_freeze(img, &view), 0);
	cr_assert_eq(disk_image_read(img, want, 0, b.size), 0);
	make_dir(dir, sizeof(dir));
	cr_assert_eq(disk_layer_export(view, dir, "disk"), 0);
	cr_assert_eq(disk_layer_import(&imported, b.path, dir, "disk"), 0);
	cr_assert_eq(disk_image_from(&back, imported, NULL), 0);
	assert_reads(back, 0, b.size, want);
	assert_file_is(&b, b.data);
	disk_layer_put(imported);
	disk_layer_put(view);
	disk_image_close(back);
	disk_image_close(img);
	remove_dir(dir);
	free(want);
	drop_base(&b);
}

Test(disk_image, a_snapshot_refuses_a_base_of_another_size_or_a_bad_map)
{
	struct base_file b;
	struct disk_image *img;
	struct disk_layer *view, *imported = NULL;
	char dir[64], path[128];
	int fd;

	make_base(&b, 8 * BLK);
	img = open_rw(&b);
	cr_assert_eq(disk_image_freeze(img, &view), 0);
	make_dir(dir, sizeof(dir));
	cr_assert_eq(disk_layer_export(view, dir, "disk"), 0);
	cr_assert_eq(disk_layer_export(view, dir, "disk"), -EEXIST, "never over an older one");
	disk_layer_put(view);
	disk_image_close(img);
	cr_assert_eq(truncate(b.path, 9 * BLK), 0);
	cr_assert_eq(disk_layer_import(&imported, b.path, dir, "disk"), -EBADMSG);
	cr_assert_eq(truncate(b.path, 8 * BLK), 0);
	cr_assert_eq(disk_layer_import(&imported, b.path, dir, "disk"), 0);
	disk_layer_put(imported);
	snprintf(path, sizeof(path), "%s/disk.map", dir);
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "\xff", 1, 32), 1); /* the bitmap, after a 32-byte header */
	close(fd);
	cr_assert_eq(disk_layer_import(&imported, b.path, dir, "disk"), -EBADMSG);
	remove_dir(dir);
	drop_base(&b);
}

/* Random operations on a family of images, each checked against a flat copy. */
#define RND_IMAGES 5
#define RND_OPS 3000

struct rnd_disk {
	struct disk_image *img;
	uint8_t *model;
	struct disk_layer *mark;
	uint8_t *mark_model;
};

static uint64_t rnd_off(uint64_t size)
{
	/* Often near block edges, where the partial-block paths are. */
	uint64_t off = (uint64_t)rand() % size;

	if (rand() % 3 == 0)
		off = off / BLK * BLK + (rand() % 2 ? 0 : BLK - 1 - rand() % 3);
	return off < size ? off : size - 1;
}

static void rnd_io(struct rnd_disk *d, uint64_t size, uint8_t *buf)
{
	uint64_t off = rnd_off(size), max = size - off;
	uint64_t len = (uint64_t)rand() % (rand() % 4 ? 2 * BLK : 9 * BLK) + 1;

	len = len < max ? len : max;
	if (rand() % 2) {
		fill(buf, len, (unsigned)rand());
		cr_assert_eq(disk_image_write(d->img, buf, off, len), 0);
		memcpy(d->model + off, buf, len);
	} else {
		assert_reads(d->img, off, len, d->model + off);
	}
}

static void rnd_fork(struct rnd_disk *d, struct rnd_disk *child, uint64_t size)
{
	child->img = fork_of(d->img);
	child->model = malloc(size);
	memcpy(child->model, d->model, size);
}

static void rnd_mark(struct rnd_disk *d, uint64_t size)
{
	disk_layer_put(d->mark);
	cr_assert_eq(disk_image_freeze(d->img, &d->mark), 0);
	free(d->mark_model);
	d->mark_model = malloc(size);
	memcpy(d->mark_model, d->model, size);
}

static void rnd_drop(struct rnd_disk *d)
{
	disk_image_close(d->img);
	disk_layer_put(d->mark);
	free(d->model);
	free(d->mark_model);
	memset(d, 0, sizeof(*d));
}

static void rnd_step(struct rnd_disk *disks, unsigned *n, uint64_t size, uint8_t *buf)
{
	struct rnd_disk *d = &disks[(unsigned)rand() % *n];
	int op = rand() % 100;

	if (op < 80) {
		rnd_io(d, size, buf);
	} else if (op < 85 && *n < RND_IMAGES && disk_image_depth(d->img) < DISK_MAX_DEPTH) {
		rnd_fork(d, &disks[(*n)++], size);
	} else if (op < 88 && disk_image_depth(d->img) < DISK_MAX_DEPTH) {
		rnd_mark(d, size);
	} else if (op < 93 && d->mark) {
		cr_assert_eq(disk_image_reset(d->img, d->mark), 0);
		memcpy(d->model, d->mark_model, size);
	} else if (op < 95) {
		cr_assert_eq(disk_image_flush(d->img), 0);
	} else if (op < 97 && *n > 1) {
		rnd_drop(d);
		*d = disks[--*n];
		memset(&disks[*n], 0, sizeof(disks[*n]));
	}
}

Test(disk_image, random_operations_match_flat_copies)
{
	struct rnd_disk disks[RND_IMAGES] = { 0 };
	struct base_file b;
	uint8_t *frozen, *buf = malloc(9 * BLK);
	unsigned n = 1;

	srand(harness_seed());
	make_base(&b, 40 * BLK + 512 * (unsigned)(rand() % 8) + (unsigned)(rand() % 512));
	disks[0].img = open_rw(&b);
	disks[0].model = malloc(b.size);
	memcpy(disks[0].model, b.data, b.size);
	for (unsigned i = 0; i < 200; i++) /* some writes straight into the base first */
		rnd_io(&disks[0], b.size, buf);
	rnd_fork(&disks[0], &disks[n++], b.size);
	frozen = file_bytes(&b);
	for (unsigned i = 0; i < RND_OPS; i++)
		rnd_step(disks, &n, b.size, buf);
	for (unsigned i = 0; i < n; i++) {
		assert_reads(disks[i].img, 0, b.size, disks[i].model);
		rnd_drop(&disks[i]);
	}
	assert_file_is(&b, frozen);
	free(frozen);
	free(buf);
	drop_base(&b);
}
