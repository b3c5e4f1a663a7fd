/*
 * virtio-blk (devices/virtio_blk.h). Requests are served on the thread that
 * notified (a vCPU), under the transport's lock, so a paused VM has none in
 * flight: a capture sees every request either done or still in the avail
 * ring, and a clone made from it goes on from there.
 *
 * The disk image comes in attach(): the base file for a booted VM, the view
 * a capture held (adopt()) for a clone, the snapshot's overlay (import())
 * for a restored VM. hold() freezes it at every capture (docs/disk.md).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "devices/disk_image.h"
#include "devices/virtio_blk.h"

#define QUEUE_MAX 128
#define BOUNCE    (64u * 1024) /* bytes moved between the disk and guest RAM at a time */
#define FILE_NAME "disk"       /* its files in a snapshot's folder: disk.overlay, disk.map */

struct req_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* The config space we fill: capacity, size_max, seg_max (little-endian, as x86 is). */
struct blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
} __attribute__((packed));

struct virtio_blk {
	struct virtio_mmio *t;
	struct virtio_backend ops;     /* per instance: ,ro adds VIRTIO_BLK_F_RO */
	bool on, ro, restored;
	char path[DEVICE_ARG_MAX];
	struct disk_image *img;        /* from attach() on */
	struct disk_layer *pending;    /* the view adopt() got, for attach() */
	char import_dir[PATH_MAX];     /* a snapshot's folder import() named, for attach() */
	struct virtio_blk_state st;    /* its own part; the transport keeps the rest */
	struct virtio_blk_stats stats;
	struct vq_chain chain;         /* under the transport's lock */
	uint8_t buf[BOUNCE];
};

static uint64_t capacity(const struct virtio_blk *b)
{
	return b->img ? disk_image_size(b->img) / VIRTIO_BLK_SECTOR : 0;
}

static void config_read(void *be, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = be;
	struct blk_config cfg = { .capacity = capacity(b), .seg_max = QUEUE_MAX - 2 };

	memcpy(data, (uint8_t *)&cfg + off, len); /* the transport bounds off + len */
}

/* Whether len bytes at sector lie inside the disk, as one or more whole sectors. */
static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	uint64_t cap = capacity(b);

	return len && len % VIRTIO_BLK_SECTOR == 0 && sector <= cap &&
	       len / VIRTIO_BLK_SECTOR <= cap - sector;
}

/* IN: the disk into the chain's writable part (all but its last byte, the status). */
static uint8_t do_in(struct virtio_blk *b, struct virtqueue *q, const struct vq_chain *c,
		     uint64_t sector, uint32_t *done)
{
	uint64_t len = c->writable - 1, off = sector * VIRTIO_BLK_SECTOR;

	if (!in_range(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t pos = 0; pos < len;) {
		size_t n = len - pos < BOUNCE ? (size_t)(len - pos) : BOUNCE;

		if (disk_image_read(b->img, b->buf, off + pos, n) < 0 ||
		    vq_write(q, c, pos, b->buf, n) != n)
			return VIRTIO_BLK_S_IOERR;
		pos += n;
		*done = (uint32_t)pos;
	}
	return VIRTIO_BLK_S_OK;
}

/* OUT: the chain's readable part after the header onto the disk. */
static uint8_t do_out(struct virtio_blk *b, struct virtqueue *q, const struct vq_chain *c,
		      uint64_t sector)
{
	uint64_t len = c->readable - sizeof(struct req_header), off = sector * VIRTIO_BLK_SECTOR;

	if (b->ro || !in_range(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t pos = 0; pos < len;) {
		size_t n = len - pos < BOUNCE ? (size_t)(len - pos) : BOUNCE;

		if (vq_read(q, c, sizeof(struct req_header) + pos, b->buf, n) != n ||
		    disk_image_write(b->img, b->buf, off + pos, n) < 0)
			return VIRTIO_BLK_S_IOERR;
		pos += n;
	}
	return VIRTIO_BLK_S_OK;
}

/* GET_ID: the file's name (its last 20 bytes), NUL-padded when shorter. */
static uint8_t do_get_id(struct virtio_blk *b, struct virtqueue *q, const struct vq_chain *c,
			 uint32_t *done)
{
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };
	const char *name = strrchr(b->path, '/') ? strrchr(b->path, '/') + 1 : b->path;
	size_t len = strlen(name), n = c->writable - 1 < sizeof(id) ? c->writable - 1 : sizeof(id);

	name += len > sizeof(id) ? len - sizeof(id) : 0;
	memcpy(id, name, len < sizeof(id) ? len : sizeof(id));
	*done = (uint32_t)vq_write(q, c, 0, id, n);
	return *done == n ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

static uint8_t dispatch(struct virtio_blk *b, struct virtqueue *q, const struct vq_chain *c,
			const struct req_header *h, uint32_t *done)
{
	if (!b->img)
		return VIRTIO_BLK_S_IOERR;
	switch (h->type) {
	case VIRTIO_BLK_T_IN: return do_in(b, q, c, h->sector, done);
	case VIRTIO_BLK_T_OUT: return do_out(b, q, c, h->sector);
	case VIRTIO_BLK_T_FLUSH:
		return disk_image_flush(b->img) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID: return do_get_id(b, q, c, done);
	default:
		b->stats.unsupported++;
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/*
 * One request: a header in the readable part, a status byte as the last
 * writable byte. A chain with no writable byte cannot be answered: it is
 * returned unanswered (length 0). The used length counts the data and the
 * status written.
 */
static uint32_t handle(struct virtio_blk *b, struct virtqueue *q, const struct vq_chain *c)
{
	struct req_header h;
	uint32_t done = 0;
	uint8_t status = VIRTIO_BLK_S_IOERR;

	b->stats.requests++;
	if (!c->writable) {
		b->st.bad_requests++;
		return 0;
	}
	if (vq_read(q, c, 0, &h, sizeof(h)) == sizeof(h))
		status = dispatch(b, q, c, &h, &done);
	if (status == VIRTIO_BLK_S_IOERR)
		b->st.bad_requests++;
	vq_write(q, c, c->writable - 1, &status, 1);
	return done + 1;
}

static void notify(void *be, unsigned queue)
{
	struct virtio_blk *b = be;
	struct virtqueue *q = virtio_mmio_live_queue(b->t, 0);
	int got;

	if (!q)
		return;
	while ((got = vq_pop(q, &b->chain)) != 0) {
		if (got == -EIO ||
		    (got > 0 && vq_push(q, b->chain.head, handle(b, q, &b->chain)) < 0)) {
			virtio_mmio_needs_reset(b->t);
			break;
		}
	}
	virtio_mmio_used(b->t, 0);
}

static const struct virtio_backend blk_backend = {
	.name = "virtio-blk", .device_id = VIRTIO_BLK_ID, .nqueues = 1, .queue_max = QUEUE_MAX,
	.features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_FLUSH,
	.config_size = sizeof(struct blk_config), .config_read = config_read, .notify = notify,
};

/* What check() allows: any instance's features, a ,ro one's included. */
static const struct virtio_backend blk_check_ops = {
	.name = "virtio-blk", .device_id = VIRTIO_BLK_ID, .nqueues = 1, .queue_max = QUEUE_MAX,
	.features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_RO,
};

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	b->ops = blk_backend;
	ret = virtio_mmio_create(&b->t, bus, host, VIRTIO_BLK_SLOT, &b->ops, b);
	if (ret < 0) {
		free(b);
		return ret;
	}
	*out = b;
	return 0;
}

/* FILE[,ro]: kept, not opened (configure() also runs in warm shells; attach() opens). */
static int dev_configure(void *dev, const char *arg)
{
	struct virtio_blk *b = dev;
	const char *comma = strrchr(arg, ',');
	size_t len = comma ? (size_t)(comma - arg) : strlen(arg);

	if (comma && strcmp(comma, ",ro")) {
		pr_err("--disk %s: the only option is ,ro", arg);
		return -EINVAL;
	}
	if (!len) {
		pr_err("--disk: give a file (--disk FILE[,ro])");
		return -EINVAL;
	}
	memcpy(b->path, arg, len);
	b->path[len] = '\0';
	b->ro = comma != NULL;
	if (b->ro)
		b->ops.features |= VIRTIO_BLK_F_RO;
	b->on = true;
	virtio_mmio_set_present(b->t, true);
	return 0;
}

static void dev_destroy(void *dev)
{
	struct virtio_blk *b = dev;

	if (!b)
		return;
	virtio_mmio_destroy(b->t);
	disk_image_close(b->img);
	disk_layer_put(b->pending);
	free(b);
}

static void dev_save(void *dev, void *state)
{
	struct virtio_blk *b = dev;
	struct virtio_blk_state *st = state;

	virtio_mmio_save(b->t, &st->transport);
	virtio_mmio_lock(b->t);
	st->size = b->img ? disk_image_size(b->img) : b->pending ? disk_layer_size(b->pending) : b->st.size;
	st->bad_requests = b->st.bad_requests;
	virtio_mmio_unlock(b->t);
}

static int dev_check(const void *state)
{
	return virtio_mmio_check_state(&((const struct virtio_blk_state *)state)->transport,
				       &blk_check_ops);
}

static int dev_restore(void *dev, const void *state)
{
	struct virtio_blk *b = dev;
	const struct virtio_blk_state *st = state;

	virtio_mmio_restore(b->t, &st->transport);
	virtio_mmio_lock(b->t);
	b->st.size = st->size;
	b->st.bad_requests = st->bad_requests;
	b->restored = b->on;
	virtio_mmio_unlock(b->t);
	return 0;
}

/* At every capture, the VM paused: freeze the disk and hold the view the state names. */
static int dev_hold(void *dev, struct device_ref **ref)
{
	struct virtio_blk *b = dev;
	struct disk_layer *view = NULL;
	int ret = 0;

	if (b->img)
		ret = disk_image_freeze(b->img, &view);
	else
		view = disk_layer_get(b->pending); /* a shell that holds a loaded state */
	*ref = disk_layer_ref(view);
	return ret;
}

/*
 * The view a capture held. Into the VM it was captured from (a reset), the
 * disk goes back to it; into another (a clone, a shell) it waits for attach().
 */
static int dev_adopt(void *dev, struct device_ref *ref)
{
	struct virtio_blk *b = dev;
	struct disk_layer *view = disk_layer_from_ref(ref);

	if (ref && !view)
		return -EINVAL;
	if (!b->img) {
		disk_layer_put(b->pending);
		b->pending = disk_layer_get(view);
		return 0;
	}
	if (!view) {
		pr_err("virtio-blk: a reset without the disk's view at the mark");
		return -EINVAL;
	}
	return disk_image_reset(b->img, view);
}

static int dev_export(struct device_ref *ref, const char *dir)
{
	struct disk_layer *view = disk_layer_from_ref(ref);

	return view ? disk_layer_export(view, dir, FILE_NAME) : -EINVAL;
}

static int dev_import(void *dev, const char *dir)
{
	struct virtio_blk *b = dev;

	if (snprintf(b->import_dir, sizeof(b->import_dir), "%s", dir) >= (int)sizeof(b->import_dir))
		return -ENAMETOOLONG;
	return 0;
}

/* The image this VM starts from: a held view, a snapshot's overlay, or the file itself. */
static int open_image(struct virtio_blk *b)
{
	struct disk_opts opts = { .ro = b->ro };
	struct disk_layer *view = NULL;
	int ret;

	if (b->pending)
		return disk_image_from(&b->img, b->pending, &opts);
	if (b->import_dir[0]) {
		ret = disk_layer_import(&view, b->path, b->import_dir, FILE_NAME);
		if (!ret)
			ret = disk_image_from(&b->img, view, &opts);
		disk_layer_put(view);
		return ret;
	}
	if (b->restored) {
		pr_err("virtio-blk: this VM's state names a disk whose layers are in another process "
		       "(or a snapshot folder not given): it cannot be restored here");
		return -ENOTSUP;
	}
	return disk_image_open(&b->img, b->path, &opts);
}

static int dev_attach(void *dev)
{
	struct virtio_blk *b = dev;
	int ret;

	if (!b->on || b->img)
		return 0;
	ret = open_image(b);
	disk_layer_put(b->pending);
	b->pending = NULL;
	if (ret < 0) {
		pr_err("virtio-blk: disk %s: %s", b->path, strerror(-ret));
		return ret;
	}
	if (b->restored && b->st.size != disk_image_size(b->img)) {
		pr_err("virtio-blk: disk %s is %llu bytes, the saved VM's was %llu", b->path,
		       (unsigned long long)disk_image_size(b->img), (unsigned long long)b->st.size);
		return -EINVAL;
	}
	if (disk_image_size(b->img) % VIRTIO_BLK_SECTOR)
		pr_warn("virtio-blk: disk %s: its last %llu bytes are no whole sector: the guest "
			"does not see them", b->path,
			(unsigned long long)(disk_image_size(b->img) % VIRTIO_BLK_SECTOR));
	return 0;
}

static int dev_describe(void *dev, struct aml *dsdt)
{
	return virtio_mmio_describe(((struct virtio_blk *)dev)->t, dsdt);
}

void virtio_blk_stats(void *dev, struct virtio_blk_stats *s)
{
	struct virtio_blk *b = dev;

	virtio_mmio_lock(b->t);
	*s = b->stats;
	s->bad_requests = b->st.bad_requests;
	s->private_bytes = b->img ? disk_image_private_bytes(b->img) : 0;
	virtio_mmio_unlock(b->t);
}

const struct device_type virtio_blk_device = {
	.name = "virtio-blk", .option = "disk", .state_size = sizeof(struct virtio_blk_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore, .describe = dev_describe,
	.attach = dev_attach, .hold = dev_hold, .adopt = dev_adopt, .export = dev_export,
	.import = dev_import,
};

_Static_assert(sizeof(struct virtio_blk_state) <= DEVICE_STATE_MAX, "virtio-blk state too big");
