/*
 * A copy-on-write disk in layers (docs/disk.md): a base file at the bottom,
 * above it a chain of frozen overlay layers, on top the layer that takes the
 * writes. An overlay is a sparse file (a memfd, or an O_TMPFILE in a folder)
 * with a bitmap of the DISK_BLOCK-byte blocks it holds; a read takes each
 * block from the highest layer that holds it, else from the base.
 *
 * Until a VM's disk is first frozen, its writes go straight to the base
 * file (unless it was opened read-only). Freezing (a fork, a reset mark, a
 * snapshot) makes the top layer immutable and shareable: it is
 * reference-counted, and whoever holds a reference (a clone's image, a reset
 * point, a snapshot being written) sees the disk as it was then. The base is
 * the first thing ever frozen and is never written again.
 *
 * An image is used by one device; its calls are serialised by a lock, so the
 * device's I/O and a capture may come from different threads. Frozen layers
 * are immutable and safe to read from any number of images.
 */
#ifndef DEVICES_DISK_IMAGE_H
#define DEVICES_DISK_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/device.h"

#define DISK_BLOCK 4096u
/*
 * At most this many frozen overlays under an image's top: each read looks
 * through them, so a freeze that would go deeper is refused (-EMLINK)
 * rather than merging layers, which would copy data during a fork.
 */
#define DISK_MAX_DEPTH 64

struct disk_image;
/* A frozen view of a disk: a layer and everything under it, down to the base. */
struct disk_layer;

struct disk_opts {
	bool ro;                  /* the guest may not write: every write is -EROFS */
	const char *overlay_dir;  /* overlays as O_TMPFILEs here; NULL: memfds */
	uint64_t max_private;     /* bytes an image's own top may hold; 0: no bound */
};

/*
 * Open path as the base of a new image (read-write unless opts->ro). Its size
 * is the disk's, any number of bytes. Returns 0 or -errno.
 */
int disk_image_open(struct disk_image **out, const char *path, const struct disk_opts *opts);
/* A new image over a frozen view (a clone's disk): O(1), nothing copied. */
int disk_image_from(struct disk_image **out, struct disk_layer *view, const struct disk_opts *opts);
void disk_image_close(struct disk_image *img);

uint64_t disk_image_size(const struct disk_image *img);
bool disk_image_ro(const struct disk_image *img);
/* Frozen overlays under the top (0 while the base still takes the writes). */
unsigned disk_image_depth(struct disk_image *img);
/* Bytes of the image's own top layer: the blocks written since it was last frozen. */
uint64_t disk_image_private_bytes(struct disk_image *img);

/*
 * len bytes at off; the whole range must lie inside the disk (else -ERANGE,
 * nothing done). A write that fails (-EROFS, -ENOSPC when the top may not
 * grow, an I/O error) may have written some of its whole blocks, never a
 * block in part and never outside the range.
 */
int disk_image_read(struct disk_image *img, void *buf, uint64_t off, uint64_t len);
int disk_image_write(struct disk_image *img, const void *buf, uint64_t off, uint64_t len);
/* Make the writes so far durable where they are meant to last (the base, before any freeze). */
int disk_image_flush(struct disk_image *img);

/*
 * Freeze the top and give a new reference to the view it ends (*view): the
 * image goes on with a new, empty top (made at its next write). Nothing is
 * frozen when nothing was written since the last freeze: the view is the
 * same. -EMLINK past DISK_MAX_DEPTH.
 */
int disk_image_freeze(struct disk_image *img, struct disk_layer **view);
/* Back to a view this image froze (a reset mark): every write since is dropped. */
int disk_image_reset(struct disk_image *img, struct disk_layer *view);

/* Views are reference-counted (struct device_ref). */
struct disk_layer *disk_layer_get(struct disk_layer *view);
void disk_layer_put(struct disk_layer *view);
struct device_ref *disk_layer_ref(struct disk_layer *view);
struct disk_layer *disk_layer_from_ref(struct device_ref *ref);
uint64_t disk_layer_size(const struct disk_layer *view);

/*
 * Snapshots on disk (devices/disk_file.c). Export writes a view's overlays,
 * flattened into one, as dir/NAME.overlay (a sparse file of the disk's size)
 * and dir/NAME.map (its block bitmap, checksummed); it also makes the base
 * durable, since the snapshot needs it as it is. Import opens base_path
 * read-only under them: a frozen view of two layers, ready for
 * disk_image_from().
 */
int disk_layer_export(struct disk_layer *view, const char *dir, const char *name);
int disk_layer_import(struct disk_layer **out, const char *base_path, const char *dir,
		      const char *name);

#endif
