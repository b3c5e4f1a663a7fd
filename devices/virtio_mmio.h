/*
 * The virtio-mmio transport (virtio 1.x, "modern" register layout, version 2)
 * for one slot of the layout (core/layout.h): its registers at
 * LAYOUT_VIRTIO_MMIO + slot * VIRTIO_MMIO_SLOT_SIZE, its interrupt an edge on
 * GSI_VIRTIO_BASE + slot. A device (virtio-rng, -blk, -vsock, -net) is a
 * backend: its ID, features, queues and config space, and a callback for a
 * queue the driver notified. docs/virtio.md has the rules.
 *
 * One mutex per transport guards its registers, its queues and the backend's
 * state: the bus calls (vCPU threads) take it, and backend callbacks run
 * under it. A backend's own I/O thread takes it (virtio_mmio_lock()) around
 * anything that touches a queue.
 */
#ifndef DEVICES_VIRTIO_MMIO_H
#define DEVICES_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/device.h"
#include "devices/virtqueue.h"

struct aml;
struct bus;

#define VIRTIO_MAX_QUEUES 4
#define VIRTIO_F_VERSION_1 (1ULL << 32)

#define VIRTIO_STATUS_ACK         1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

#define VIRTIO_INT_VRING  1
#define VIRTIO_INT_CONFIG 2

struct virtio_backend {
	const char *name;          /* for messages: "virtio-rng" */
	uint32_t device_id;
	uint64_t features;         /* offered besides VIRTIO_F_VERSION_1 */
	unsigned nqueues;          /* 1..VIRTIO_MAX_QUEUES */
	uint16_t queue_max;        /* entries per queue, a power of two <= VQ_MAX_SIZE */
	uint32_t config_size;      /* bytes of config space */
	/*
	 * All called under the transport's lock, from a vCPU thread; never while
	 * the device is absent. off + len is within config_size; len is 1..8.
	 */
	void (*config_read)(void *be, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *be, uint32_t off, const uint8_t *data, uint32_t len); /* or NULL */
	/*
	 * The driver notified queue (a live one: virtio_mmio_live_queue() gives
	 * it), or the device just started (DRIVER_OK) and the queue is ready: it
	 * may hold nothing new. Pop, serve, push, then virtio_mmio_used().
	 */
	void (*notify)(void *be, unsigned queue);
	/*
	 * The driver reset the device (status 0): the queues are gone, so a
	 * backend drops what it took from them and pushes none of it. Or NULL.
	 */
	void (*reset)(void *be);
};

struct virtio_mmio_state {
	uint32_t status;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t interrupt_status, config_generation;
	uint64_t driver_features;
	struct vq_state queues[VIRTIO_MAX_QUEUES];
};

struct virtio_mmio_stats {
	uint64_t bad_accesses;     /* refused register reads and writes */
};

struct virtio_mmio;

int virtio_mmio_create(struct virtio_mmio **out, struct bus *bus, const struct device_host *host,
		       unsigned slot, const struct virtio_backend *ops, void *be);
void virtio_mmio_destroy(struct virtio_mmio *t);
/* Show the device to the guest (a configured optional device) or not (DeviceID 0). */
void virtio_mmio_set_present(struct virtio_mmio *t, bool present);
bool virtio_mmio_present(const struct virtio_mmio *t);

void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);
/* Queue q (under the lock), or NULL unless the driver set it up and the device runs (DRIVER_OK). */
struct virtqueue *virtio_mmio_live_queue(struct virtio_mmio *t, unsigned q);
/* Under the lock: raise interrupt bits (an edge when one is new). */
void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t bits);
/* Under the lock: after pushing used buffers to q, interrupt if the driver wants it. */
void virtio_mmio_used(struct virtio_mmio *t, unsigned q);
/* Under the lock: the config space changed (a new generation, a config interrupt). */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* Under the lock: the driver broke the device; it must reset it (DEVICE_NEEDS_RESET). */
void virtio_mmio_needs_reset(struct virtio_mmio *t);
uint64_t virtio_mmio_driver_features(const struct virtio_mmio *t);

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *st);
/* Whether st is a state this backend's transport could be in: 0 or -EINVAL. */
int virtio_mmio_check_state(const struct virtio_mmio_state *st, const struct virtio_backend *ops);
void virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *st);
/* Counters: the transport's and its queues' summed. */
void virtio_mmio_stats(struct virtio_mmio *t, struct virtio_mmio_stats *s, struct vq_stats *q);
/* Its Device() in the DSDT (LNRO0005 with its window and interrupt); nothing while absent. */
int virtio_mmio_describe(struct virtio_mmio *t, struct aml *dsdt);

#endif
