/* virtio-rng (devices/virtio_rng.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/virtio_rng.h"

#define CHUNK 4096u
/* Bytes one request may ask for: Linux asks for at most a page or so; more is a driver's excess. */
#define MAX_REQUEST (64u * 1024)

struct virtio_rng {
	struct virtio_mmio *t;
	struct vq_chain chain;     /* under the transport's lock, as buf */
	uint8_t buf[CHUNK];
};

static void no_config(void *be, uint32_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
}

/* Fill one chain's writable part: the bytes written. */
static uint32_t fill(struct virtio_rng *r, struct virtqueue *q, const struct vq_chain *c)
{
	uint64_t want = c->writable < MAX_REQUEST ? c->writable : MAX_REQUEST, done = 0;

	while (done < want) {
		size_t n = want - done < CHUNK ? (size_t)(want - done) : CHUNK;
		ssize_t got = getrandom(r->buf, n, 0);

		if (got <= 0 || vq_write(q, c, done, r->buf, (size_t)got) != (size_t)got)
			break;
		done += (uint64_t)got;
	}
	return (uint32_t)done;
}

static void notify(void *be, unsigned queue)
{
	struct virtio_rng *r = be;
	struct virtqueue *q = virtio_mmio_live_queue(r->t, 0);
	struct vq_chain *c = &r->chain;
	int got;

	if (!q)
		return;
	while ((got = vq_pop(q, c)) != 0) {
		if (got == -EIO) {
			virtio_mmio_needs_reset(r->t);
			break;
		}
		if (got > 0 && vq_push(q, c->head, fill(r, q, c)) < 0) {
			virtio_mmio_needs_reset(r->t);
			break;
		}
	}
	virtio_mmio_used(r->t, 0);
}

static const struct virtio_backend rng_backend = {
	.name = "virtio-rng", .device_id = 4, .nqueues = 1, .queue_max = 64,
	.config_size = 0, .config_read = no_config, .notify = notify,
};

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = virtio_mmio_create(&r->t, bus, host, VIRTIO_RNG_SLOT, &rng_backend, r);
	if (ret < 0) {
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

/* The argument says nothing (the CLI gives ""): any turns the device on. */
static int dev_configure(void *dev, const char *arg)
{
	struct virtio_rng *r = dev;

	virtio_mmio_set_present(r->t, true);
	return 0;
}

static void dev_destroy(void *dev)
{
	struct virtio_rng *r = dev;

	if (r)
		virtio_mmio_destroy(r->t);
	free(r);
}

static void dev_save(void *dev, void *state)
{
	virtio_mmio_save(((struct virtio_rng *)dev)->t, state);
}

static int dev_check(const void *state)
{
	return virtio_mmio_check_state(state, &rng_backend);
}

static int dev_restore(void *dev, const void *state)
{
	virtio_mmio_restore(((struct virtio_rng *)dev)->t, state);
	return 0;
}

static int dev_describe(void *dev, struct aml *dsdt)
{
	return virtio_mmio_describe(((struct virtio_rng *)dev)->t, dsdt);
}

const struct device_type virtio_rng_device = {
	.name = "virtio-rng", .option = "rng", .state_size = sizeof(struct virtio_rng_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore, .describe = dev_describe,
};

_Static_assert(sizeof(struct virtio_rng_state) <= DEVICE_STATE_MAX, "virtio-rng state too big");
