/* A virtio-mmio driver for device unit tests (tests/virtio_driver.h). */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "core/layout.h"
#include "devices/virtqueue.h"
#include "tests/virtio_driver.h"

static uint64_t vm_id(void *opaque)
{
	return ((struct vdrv *)opaque)->id;
}

static void no_irq(void *opaque, unsigned gsi, int level)
{
}

void vdrv_make(struct vdrv *d, const struct device_type *type, unsigned slot, uint64_t id)
{
	memset(d, 0, sizeof(*d));
	d->type = type;
	d->slot = slot;
	d->id = id;
	cr_assert_eq(guest_mem_create(&d->mem, 16 * MiB, NULL), 0);
	bus_init(&d->bus);
	d->host = (struct device_host){ .set_irq = no_irq, .vm_id = vm_id, .mem = &d->mem,
					.opaque = d };
	cr_assert_eq(type->create(&d->dev, &d->bus, &d->host), 0);
}

void vdrv_free(struct vdrv *d)
{
	if (!d->dev)
		return;
	d->type->destroy(d->dev);
	guest_mem_destroy(&d->mem);
	d->dev = NULL;
}

static uint64_t reg_addr(const struct vdrv *d, uint64_t reg)
{
	return LAYOUT_VIRTIO_MMIO + d->slot * VIRTIO_MMIO_SLOT_SIZE + reg;
}

uint32_t vdrv_rd(struct vdrv *d, uint64_t reg)
{
	uint32_t v = 0;

	cr_assert(bus_access(&d->bus, BUS_MMIO, reg_addr(d, reg), (uint8_t *)&v, 4, false));
	return v;
}

void vdrv_wr(struct vdrv *d, uint64_t reg, uint32_t v)
{
	cr_assert(bus_access(&d->bus, BUS_MMIO, reg_addr(d, reg), (uint8_t *)&v, 4, true));
}

uint8_t vdrv_config(struct vdrv *d, unsigned off)
{
	uint8_t v = 0;

	cr_assert(bus_access(&d->bus, BUS_MMIO, reg_addr(d, VD_CONFIG + off), &v, 1, false));
	return v;
}

void vdrv_start(struct vdrv *d, uint32_t features, unsigned nq)
{
	const uint32_t drv = 1 | 2, ok = drv | 8;

	vdrv_wr(d, VD_STATUS, 0);
	vdrv_wr(d, VD_STATUS, drv);
	vdrv_wr(d, VD_DRV_FEAT_SEL, 0);
	vdrv_wr(d, VD_DRV_FEAT, features);
	vdrv_wr(d, VD_DRV_FEAT_SEL, 1);
	vdrv_wr(d, VD_DRV_FEAT, 1); /* VIRTIO_F_VERSION_1 */
	vdrv_wr(d, VD_STATUS, ok);
	cr_assert_eq(vdrv_rd(d, VD_STATUS) & 8, 8, "the device refused the features");
	for (unsigned q = 0; q < nq; q++) {
		vdrv_wr(d, VD_QUEUE_SEL, q);
		vdrv_wr(d, VD_QUEUE_NUM, VD_QSIZE);
		vdrv_wr(d, VD_DESC_LO, (uint32_t)VD_RING(q));
		vdrv_wr(d, VD_AVAIL_LO, (uint32_t)(VD_RING(q) + 0x1000));
		vdrv_wr(d, VD_USED_LO, (uint32_t)(VD_RING(q) + 0x2000));
		vdrv_wr(d, VD_QUEUE_READY, 1);
	}
	vdrv_wr(d, VD_STATUS, ok | 4);
}

void vdrv_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	       uint16_t next)
{
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } e = { addr, len, flags, next };

	cr_assert_eq(guest_write(&d->mem, VD_RING(q) + 16ULL * i, &e, sizeof(e)), 0);
}

void vdrv_offer(struct vdrv *d, unsigned q, uint16_t head)
{
	uint16_t idx = ++d->avail[q];

	guest_write(&d->mem, VD_RING(q) + 0x1000 + 4 + 2ULL * ((idx - 1) % VD_QSIZE), &head, 2);
	guest_write(&d->mem, VD_RING(q) + 0x1000 + 2, &idx, 2);
	vdrv_wr(d, VD_QUEUE_NOTIFY, q);
}

static uint16_t used_idx(struct vdrv *d, unsigned q)
{
	uint16_t idx = 0;

	guest_read(&d->mem, VD_RING(q) + 0x2000 + 2, &idx, 2);
	return idx;
}

bool vdrv_next_used(struct vdrv *d, unsigned q, unsigned ms, uint32_t *head, uint32_t *len)
{
	uint32_t e[2];

	for (unsigned t = 0; used_idx(d, q) == d->seen[q]; t++) {
		if (t >= ms)
			return false;
		usleep(1000);
	}
	guest_read(&d->mem, VD_RING(q) + 0x2000 + 4 + 8ULL * (d->seen[q] % VD_QSIZE), e, sizeof(e));
	d->seen[q]++;
	*head = e[0];
	*len = e[1];
	return true;
}
