/* virtio-rng (`run --rng`): entropy from the host's getrandom(), on virtio-mmio slot 0. */
#ifndef DEVICES_VIRTIO_RNG_H
#define DEVICES_VIRTIO_RNG_H

#include "core/device.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_RNG_SLOT 0

struct virtio_rng_state {
	struct virtio_mmio_state transport;
};

extern const struct device_type virtio_rng_device;

#endif
