/*
 * virtio-blk (`run --disk FILE[,ro]`) on virtio-mmio slot 1, over a
 * copy-on-write disk image (devices/disk_image.h): each clone writes to its
 * own overlay, FILE is never written once the VM first forked. docs/disk.md.
 */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <stdint.h>

#include "core/device.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_BLK_SLOT 1
#define VIRTIO_BLK_ID   2

/* Request types and status values (virtio 1.x, 5.2.6). */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

/* Feature bits offered. */
#define VIRTIO_BLK_F_SEG_MAX (1ULL << 2)
#define VIRTIO_BLK_F_RO      (1ULL << 5)
#define VIRTIO_BLK_F_FLUSH   (1ULL << 9)

#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_BYTES 20

struct virtio_blk_state {
	struct virtio_mmio_state transport;
	uint64_t size;            /* the disk's bytes: a clone's or restored VM's disk must match */
	uint64_t bad_requests;    /* answered IOERR: malformed, out of range, or refused */
};

/* Counters for tests and reports. */
struct virtio_blk_stats {
	uint64_t requests, bad_requests, unsupported;
	uint64_t private_bytes;   /* the VM's own overlay (disk_image_private_bytes()) */
};

void virtio_blk_stats(void *dev, struct virtio_blk_stats *s);

extern const struct device_type virtio_blk_device;

#endif
