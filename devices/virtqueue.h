/*
 * The split virtqueue of virtio 1.x, as a device sees it. The driver (the
 * guest) owns the rings and may write anything into them at any time, so
 * every index, address and length read from guest RAM is checked before use
 * and RAM is reached only through guest_read()/guest_write() (bounded, and
 * seen by reset-in-place). A bad chain is returned to the driver as used
 * with length 0 and counted; a ring that cannot be read at all, or whose
 * avail index runs ahead by more than the queue size, breaks the queue until
 * the driver resets the device.
 *
 * Why two outcomes: a bad chain leaves the ring itself consistent (the next
 * entry is still where the index says), so the device hands it back and goes
 * on, and one malformed request cannot wedge a device a live driver still
 * uses. A ring whose index or memory cannot be trusted has no next entry to
 * go on from: the transport sets DEVICE_NEEDS_RESET.
 *
 * Not offered, so not accepted: VIRTIO_RING_F_INDIRECT_DESC (a descriptor
 * with INDIRECT makes its chain bad) and VIRTIO_RING_F_EVENT_IDX
 * (interrupts follow VIRTQ_AVAIL_F_NO_INTERRUPT alone).
 *
 * Not thread-safe: the caller serialises (the transport's lock).
 */
#ifndef DEVICES_VIRTQUEUE_H
#define DEVICES_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define VQ_MAX_SIZE 256

#define VIRTQ_DESC_F_NEXT        1
#define VIRTQ_DESC_F_WRITE       2
#define VIRTQ_DESC_F_INDIRECT    4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* A queue's state: plain data, saved and restored with its device. */
struct vq_state {
	uint64_t desc, avail, used; /* guest-physical addresses of the three parts */
	uint16_t size;              /* entries: a power of two up to VQ_MAX_SIZE; 0 until set */
	uint16_t last_avail;        /* the avail ring's next entry for the device */
	uint16_t used_idx;          /* the used ring's index as the device last wrote it */
	uint8_t ready;              /* QueueReady */
	uint8_t broken;             /* the driver broke the ring: nothing more until a reset */
};

/* One descriptor of a chain, checked: [gpa, gpa + len) is guest RAM. */
struct vq_seg {
	uint64_t gpa;
	uint32_t len;
	bool writable;              /* device-writable: every one after the readable ones */
};

struct vq_chain {
	uint16_t head;
	unsigned nseg;
	uint64_t readable, writable; /* bytes in each part */
	struct vq_seg seg[VQ_MAX_SIZE];
};

struct vq_stats {
	uint64_t chains;            /* good chains taken */
	uint64_t bad_chains;        /* returned with length 0 */
	uint64_t broken;            /* times the ring itself was found broken */
};

struct virtqueue {
	struct vq_state st;
	const struct guest_mem *mem;
	struct vq_stats stats;
	uint16_t signalled;         /* used_idx when vq_wants_interrupt() last said yes or no */
};

/* Whether st is a state a queue could be in (0 or -EINVAL): a valid size, indexes in range. */
int vq_check_state(const struct vq_state *st);
/* Take st as the queue's state (a reset, a new setup, a restore); mem and stats stay. */
void vq_load(struct virtqueue *vq, const struct vq_state *st);
/*
 * The next available chain into c: 1 when there was one, 0 when there is
 * none, -EBADMSG for a bad chain (already returned as used, length 0, and
 * counted), -EIO when the ring is broken (the device should ask for a reset).
 */
int vq_pop(struct virtqueue *vq, struct vq_chain *c);
/*
 * Give back the chain just popped, unused (a device that found nothing to
 * put in it): it is the last one taken, and the driver may not touch an
 * entry before it is used, so stepping the index back is exact.
 */
void vq_unpop(struct virtqueue *vq);
/*
 * Return chain head as used with len bytes written (len: at most the chain's
 * writable bytes, which the caller knows): 0, -EINVAL (head is no entry of
 * the queue: the caller's bug) or -EIO (not ready, or the used ring is not RAM).
 */
int vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
/*
 * After pushing: whether to interrupt the driver. Yes when something was
 * pushed since the last call and the driver did not set
 * VIRTQ_AVAIL_F_NO_INTERRUPT; never for nothing (Linux counts interrupts that
 * bring no used buffer and, past a limit, turns the line off).
 */
bool vq_wants_interrupt(struct virtqueue *vq);
/* Copy out of the chain's readable part from offset off: the bytes copied. */
size_t vq_read(const struct virtqueue *vq, const struct vq_chain *c, uint64_t off, void *dst,
	       size_t len);
/* Copy into the chain's writable part from offset off: the bytes copied. */
size_t vq_write(const struct virtqueue *vq, const struct vq_chain *c, uint64_t off,
		const void *src, size_t len);

#endif
