/*
 * A virtio-mmio driver for device unit tests, without a guest: one VM's RAM,
 * its bus and one device of the table on its slot, with queues laid out at
 * fixed addresses and driven as Linux's driver drives them.
 */
#ifndef TESTS_VIRTIO_DRIVER_H
#define TESTS_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/device.h"
#include "core/memory.h"

enum {
	VD_DEVICE_ID = 0x008, VD_DEV_FEAT = 0x010, VD_DEV_FEAT_SEL = 0x014, VD_DRV_FEAT = 0x020,
	VD_DRV_FEAT_SEL = 0x024, VD_QUEUE_SEL = 0x030, VD_QUEUE_NUM = 0x038, VD_QUEUE_READY = 0x044,
	VD_QUEUE_NOTIFY = 0x050, VD_INT_STATUS = 0x060, VD_INT_ACK = 0x064, VD_STATUS = 0x070,
	VD_DESC_LO = 0x080, VD_AVAIL_LO = 0x090, VD_USED_LO = 0x0a0, VD_CONFIG = 0x100,
};

#define VD_QSIZE   16
#define VD_MAXQ    4
#define VD_WAIT_MS 5000
/* Queue q's rings: descriptors, then avail at +0x1000, used at +0x2000. */
#define VD_RING(q)   (0x10000ULL + 0x4000ULL * (q))
/* Buffer i of queue q: 68 KiB apart, room for any frame or packet. */
#define VD_BUF(q, i) (0x100000ULL + 0x200000ULL * (q) + 0x11000ULL * (i))

struct vdrv {
	struct guest_mem mem;
	struct bus bus;
	struct device_host host;
	const struct device_type *type;
	void *dev;
	unsigned slot;
	uint64_t id;                     /* what host.vm_id() says */
	uint16_t avail[VD_MAXQ], seen[VD_MAXQ];
};

/* Make type's device (not configured) in a 16 MiB VM with clone id id. */
void vdrv_make(struct vdrv *d, const struct device_type *type, unsigned slot, uint64_t id);
void vdrv_free(struct vdrv *d);
uint32_t vdrv_rd(struct vdrv *d, uint64_t reg);
void vdrv_wr(struct vdrv *d, uint64_t reg, uint32_t v);
/* One config-space byte. */
uint8_t vdrv_config(struct vdrv *d, unsigned off);
/* Probe: reset, features (the low 32 bits; VERSION_1 always), nq queues of VD_QSIZE, DRIVER_OK. */
void vdrv_start(struct vdrv *d, uint32_t features, unsigned nq);
void vdrv_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	       uint16_t next);
/* Offer chain head on q and notify. */
void vdrv_offer(struct vdrv *d, unsigned q, uint16_t head);
/* Wait up to ms for the device to use a buffer of q: its head and length, or false. */
bool vdrv_next_used(struct vdrv *d, unsigned q, unsigned ms, uint32_t *head, uint32_t *len);

#endif
