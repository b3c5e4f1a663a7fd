/* The virtio-mmio transport (devices/virtio_mmio.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/aml.h"
#include "core/bus.h"
#include "core/layout.h"
#include "devices/virtio_mmio.h"

#define MAGIC_VALUE 0x74726976 /* "virt" */
#define VENDOR_ID   0x4b524f46 /* "FORK" */

enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
	REG_DEV_FEAT = 0x010, REG_DEV_FEAT_SEL = 0x014, REG_DRV_FEAT = 0x020,
	REG_DRV_FEAT_SEL = 0x024, REG_QUEUE_SEL = 0x030, REG_QUEUE_MAX = 0x034,
	REG_QUEUE_NUM = 0x038, REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
	REG_INT_STATUS = 0x060, REG_INT_ACK = 0x064, REG_STATUS = 0x070,
	REG_DESC_LO = 0x080, REG_DESC_HI = 0x084, REG_AVAIL_LO = 0x090, REG_AVAIL_HI = 0x094,
	REG_USED_LO = 0x0a0, REG_USED_HI = 0x0a4, REG_CONFIG_GEN = 0x0fc, REG_CONFIG = 0x100,
};

#define WINDOW 0x200 /* what the DSDT declares: registers and up to 256 bytes of config */

struct virtio_mmio {
	pthread_mutex_t lock;
	struct device_host host;
	const struct virtio_backend *ops;
	void *be;
	unsigned slot;
	bool present;
	struct virtio_mmio_state st;
	struct virtqueue vq[VIRTIO_MAX_QUEUES];
	struct virtio_mmio_stats stats;
};

static unsigned gsi(const struct virtio_mmio *t)
{
	return GSI_VIRTIO_BASE + t->slot;
}

static uint64_t offered(const struct virtio_mmio *t)
{
	return t->ops->features | VIRTIO_F_VERSION_1;
}

/* The selected queue, or NULL when QueueSel names none. */
static struct virtqueue *selected(struct virtio_mmio *t)
{
	return t->st.queue_sel < t->ops->nqueues ? &t->vq[t->st.queue_sel] : NULL;
}

static void reset(struct virtio_mmio *t)
{
	memset(&t->st, 0, sizeof(t->st));
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_load(&t->vq[i], &t->st.queues[i]);
	if (t->ops->reset)
		t->ops->reset(t->be);
}

static uint32_t queue_read(struct virtio_mmio *t, uint64_t reg)
{
	struct virtqueue *q = selected(t);

	if (!q)
		return 0;
	switch (reg) {
	case REG_QUEUE_MAX: return t->ops->queue_max;
	case REG_QUEUE_NUM: return q->st.size;
	case REG_QUEUE_READY: return q->st.ready;
	case REG_DESC_LO: return (uint32_t)q->st.desc;
	case REG_DESC_HI: return (uint32_t)(q->st.desc >> 32);
	case REG_AVAIL_LO: return (uint32_t)q->st.avail;
	case REG_AVAIL_HI: return (uint32_t)(q->st.avail >> 32);
	case REG_USED_LO: return (uint32_t)q->st.used;
	default: return (uint32_t)(q->st.used >> 32);
	}
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t reg)
{
	switch (reg) {
	case REG_MAGIC: return MAGIC_VALUE;
	case REG_VERSION: return 2;
	case REG_DEVICE_ID: return t->present ? t->ops->device_id : 0;
	case REG_VENDOR_ID: return VENDOR_ID;
	case REG_DEV_FEAT:
		return t->st.device_features_sel > 1 ? 0 :
		       (uint32_t)(offered(t) >> (32 * t->st.device_features_sel));
	case REG_INT_STATUS: return t->st.interrupt_status;
	case REG_STATUS: return t->st.status;
	case REG_CONFIG_GEN: return t->st.config_generation;
	case REG_QUEUE_MAX: case REG_QUEUE_NUM: case REG_QUEUE_READY: case REG_DESC_LO:
	case REG_DESC_HI: case REG_AVAIL_LO: case REG_AVAIL_HI: case REG_USED_LO: case REG_USED_HI:
		return queue_read(t, reg);
	default:
		t->stats.bad_accesses++;
		return 0;
	}
}

static void set_half(uint64_t *field, bool high, uint32_t v)
{
	*field = high ? (*field & 0xffffffffu) | (uint64_t)v << 32
		      : (*field & ~0xffffffffULL) | v;
}

/*
 * QueueReady: 1 needs a size; a queue made ready afresh starts at index 0
 * (its rings are new: Linux sets them up zeroed, and writes 0 here before
 * freeing them), and is no longer broken. 1 again changes nothing, so a
 * broken queue stays broken until the driver sets it up again or resets.
 */
static bool ready_write(struct virtqueue *q, uint32_t v)
{
	struct vq_state st = q->st;

	if (v > 1 || (v && !st.size))
		return false;
	if (v == st.ready)
		return true;
	st.ready = (uint8_t)v;
	st.last_avail = st.used_idx = 0;
	st.broken = 0;
	vq_load(q, &st);
	return true;
}

/* QueueNum, QueueReady and the addresses: only while the queue is not ready, and only sane values. */
static bool queue_write(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	struct virtqueue *q = selected(t);

	if (!q || (q->st.ready && reg != REG_QUEUE_READY))
		return false;
	switch (reg) {
	case REG_QUEUE_NUM:
		if (!v || v > t->ops->queue_max || (v & (v - 1)))
			return false;
		q->st.size = (uint16_t)v;
		return true;
	case REG_QUEUE_READY:
		return ready_write(q, v);
	case REG_DESC_LO: case REG_DESC_HI: set_half(&q->st.desc, reg == REG_DESC_HI, v); return true;
	case REG_AVAIL_LO: case REG_AVAIL_HI: set_half(&q->st.avail, reg == REG_AVAIL_HI, v); return true;
	default: set_half(&q->st.used, reg == REG_USED_HI, v); return true;
	}
}

/* Whether the driver may keep FEATURES_OK with features: VERSION_1 and nothing unoffered. */
static bool features_ok(uint64_t features, uint64_t offer)
{
	return (features & VIRTIO_F_VERSION_1) && !(features & ~offer);
}

/*
 * A queue the driver filled and notified before DRIVER_OK was not served
 * then (live_queue() refused it): look at every ready queue once the device runs.
 */
static void kick_all(struct virtio_mmio *t)
{
	for (unsigned q = 0; q < t->ops->nqueues; q++)
		if (virtio_mmio_live_queue(t, q))
			t->ops->notify(t->be, q);
}

/*
 * FEATURES_OK holds only for acceptable features (the driver reads it back);
 * DRIVER_OK only after it; NEEDS_RESET is the device's to set, not the driver's.
 */
static void status_write(struct virtio_mmio *t, uint32_t v)
{
	uint32_t was = t->st.status;

	if (!v) {
		reset(t);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(t->st.status & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_ok(t->st.driver_features, offered(t)))
		v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
	t->st.status = (v & 0xff & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET) |
		       (was & VIRTIO_STATUS_NEEDS_RESET);
	if ((t->st.status & ~was) & VIRTIO_STATUS_DRIVER_OK)
		kick_all(t);
}

static void notify(struct virtio_mmio *t, uint32_t q)
{
	if (q < t->ops->nqueues && virtio_mmio_live_queue(t, q))
		t->ops->notify(t->be, q);
}

static bool reg_write(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	switch (reg) {
	case REG_DEV_FEAT_SEL: t->st.device_features_sel = v; return true;
	case REG_DRV_FEAT_SEL: t->st.driver_features_sel = v; return true;
	case REG_DRV_FEAT:
		if (t->st.driver_features_sel > 1 || (t->st.status & VIRTIO_STATUS_FEATURES_OK))
			return false;
		set_half(&t->st.driver_features, t->st.driver_features_sel == 1, v);
		return true;
	case REG_QUEUE_SEL: t->st.queue_sel = v; return true;
	case REG_QUEUE_NOTIFY: notify(t, v); return true;
	case REG_INT_ACK: t->st.interrupt_status &= ~v; return true;
	case REG_STATUS: status_write(t, v); return true;
	case REG_QUEUE_NUM: case REG_QUEUE_READY: case REG_DESC_LO: case REG_DESC_HI:
	case REG_AVAIL_LO: case REG_AVAIL_HI: case REG_USED_LO: case REG_USED_HI:
		return queue_write(t, reg, v);
	default:
		return false;
	}
}

static void config_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
			  bool is_write)
{
	if (off + len > t->ops->config_size || (is_write && !t->ops->config_write)) {
		t->stats.bad_accesses++;
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write)
		t->ops->config_write(t->be, (uint32_t)off, data, len);
	else
		t->ops->config_read(t->be, (uint32_t)off, data, len);
}

static void io(void *dev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *t = dev;
	uint32_t v = 0;

	pthread_mutex_lock(&t->lock);
	if (!t->present && off != REG_MAGIC && off != REG_VERSION) {
		/* An absent device: DeviceID 0, the rest reads 0 and writes go nowhere. */
		if (!is_write)
			memset(data, 0, len);
	} else if (off >= REG_CONFIG) {
		config_access(t, off - REG_CONFIG, data, len, is_write);
	} else if (len != 4 || off % 4) {
		t->stats.bad_accesses++;
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		memcpy(&v, data, 4);
		if (!reg_write(t, off, v))
			t->stats.bad_accesses++;
	} else {
		v = reg_read(t, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_dev_ops virtio_mmio_bus_ops = { .name = "virtio-mmio", .io = io };

int virtio_mmio_create(struct virtio_mmio **out, struct bus *bus, const struct device_host *host,
		       unsigned slot, const struct virtio_backend *ops, void *be)
{
	struct virtio_mmio *t;
	int ret;

	if (slot >= VIRTIO_MMIO_SLOTS || !ops->nqueues || ops->nqueues > VIRTIO_MAX_QUEUES ||
	    !ops->queue_max || ops->queue_max > VQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->host = *host;
	t->ops = ops;
	t->be = be;
	t->slot = slot;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		t->vq[i].mem = host->mem;
	ret = bus_register(bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + slot * VIRTIO_MMIO_SLOT_SIZE,
			   VIRTIO_MMIO_SLOT_SIZE, &virtio_mmio_bus_ops, t);
	if (ret < 0) {
		virtio_mmio_destroy(t);
		return ret;
	}
	*out = t;
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void virtio_mmio_set_present(struct virtio_mmio *t, bool present)
{
	pthread_mutex_lock(&t->lock);
	t->present = present;
	pthread_mutex_unlock(&t->lock);
}

bool virtio_mmio_present(const struct virtio_mmio *t)
{
	return t->present;
}

void virtio_mmio_lock(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_mmio_unlock(struct virtio_mmio *t)
{
	pthread_mutex_unlock(&t->lock);
}

struct virtqueue *virtio_mmio_live_queue(struct virtio_mmio *t, unsigned q)
{
	if (q >= t->ops->nqueues || !(t->st.status & VIRTIO_STATUS_DRIVER_OK) ||
	    (t->st.status & VIRTIO_STATUS_NEEDS_RESET) || !t->vq[q].st.ready)
		return NULL;
	return &t->vq[q];
}

void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t bits)
{
	bool edge = bits & ~t->st.interrupt_status;

	t->st.interrupt_status |= bits;
	/* Edge-triggered (the DSDT says so): a pulse when a bit is new. */
	if (edge && t->host.set_irq) {
		t->host.set_irq(t->host.opaque, gsi(t), 1);
		t->host.set_irq(t->host.opaque, gsi(t), 0);
	}
}

void virtio_mmio_used(struct virtio_mmio *t, unsigned q)
{
	if (q < t->ops->nqueues && vq_wants_interrupt(&t->vq[q]))
		virtio_mmio_interrupt(t, VIRTIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	t->st.config_generation++;
	if (t->st.status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_interrupt(t, VIRTIO_INT_CONFIG);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t)
{
	if (t->st.status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	t->st.status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_mmio_config_changed(t);
}

uint64_t virtio_mmio_driver_features(const struct virtio_mmio *t)
{
	return t->st.driver_features;
}

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *st)
{
	pthread_mutex_lock(&t->lock);
	*st = t->st;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		st->queues[i] = t->vq[i].st;
	pthread_mutex_unlock(&t->lock);
}

/* What status_write() lets a status be: FEATURES_OK for acceptable features, DRIVER_OK after it. */
static bool status_possible(const struct virtio_mmio_state *st, const struct virtio_backend *ops)
{
	if (st->status > 0xff)
		return false;
	if ((st->status & VIRTIO_STATUS_DRIVER_OK) && !(st->status & VIRTIO_STATUS_FEATURES_OK))
		return false;
	return !(st->status & VIRTIO_STATUS_FEATURES_OK) ||
	       features_ok(st->driver_features, ops->features | VIRTIO_F_VERSION_1);
}

int virtio_mmio_check_state(const struct virtio_mmio_state *st, const struct virtio_backend *ops)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (vq_check_state(&st->queues[i]) < 0 ||
		    (i >= ops->nqueues && (st->queues[i].ready || st->queues[i].size)) ||
		    st->queues[i].size > ops->queue_max)
			return -EINVAL;
	if (st->interrupt_status & ~(uint32_t)(VIRTIO_INT_VRING | VIRTIO_INT_CONFIG))
		return -EINVAL;
	return status_possible(st, ops) ? 0 : -EINVAL;
}

void virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *st)
{
	pthread_mutex_lock(&t->lock);
	t->st = *st;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_load(&t->vq[i], &st->queues[i]);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_stats(struct virtio_mmio *t, struct virtio_mmio_stats *s, struct vq_stats *q)
{
	pthread_mutex_lock(&t->lock);
	*s = t->stats;
	memset(q, 0, sizeof(*q));
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		q->chains += t->vq[i].stats.chains;
		q->bad_chains += t->vq[i].stats.bad_chains;
		q->broken += t->vq[i].stats.broken;
	}
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_describe(struct virtio_mmio *t, struct aml *dsdt)
{
	char name[5];

	if (!t->present)
		return 0;
	snprintf(name, sizeof(name), "VR%02u", t->slot);
	aml_device(dsdt, name);
	aml_name_string(dsdt, "_HID", "LNRO0005");
	aml_name_int(dsdt, "_UID", t->slot);
	aml_crs_begin(dsdt);
	aml_crs_mem32(dsdt, (uint32_t)(LAYOUT_VIRTIO_MMIO + t->slot * VIRTIO_MMIO_SLOT_SIZE), WINDOW);
	aml_crs_irq(dsdt, gsi(t), false, false);
	aml_crs_end(dsdt);
	aml_end(dsdt);
	return 0;
}
