/*
 * virtio-net (`run --net tap:NAME[,mac=MAC]`) on virtio-mmio slot 3, its
 * backend a TAP interface that already exists (tests make theirs in a
 * network namespace of their own). "%u" in NAME is the VM's clone id (0 for
 * a booted VM), so each clone reaches its own TAP; a clone of a NAME
 * without one has no TAP: its link is down. A fork request can name a
 * clone's TAP instead (rebind).
 *
 * Each clone has its own MAC on the wire. The guest keeps the MAC it read
 * when its driver probed, so the device translates between the two
 * (devices/net_frame.h), and tells the guest to announce itself
 * (VIRTIO_NET_S_ANNOUNCE: Linux sends gratuitous ARPs), so that switches and
 * neighbours learn the clone's MAC at once. mac= sets the MAC the world sees.
 *
 * Frames move on an I/O thread per device (poll over the TAP and an eventfd
 * the queue notifications kick), under the transport's lock, and only while
 * the VM's vCPUs run (set_running). The control queue is served on the vCPU
 * thread that notified it. docs/virtio.md.
 */
#ifndef DEVICES_VIRTIO_NET_H
#define DEVICES_VIRTIO_NET_H

#include <stdint.h>

#include "core/device.h"
#include "devices/net_frame.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_NET_SLOT 3
#define VIRTIO_NET_ID   1

#define VIRTIO_NET_F_MAC            (1ULL << 5)
#define VIRTIO_NET_F_STATUS         (1ULL << 16)
#define VIRTIO_NET_F_CTRL_VQ        (1ULL << 17)
#define VIRTIO_NET_F_GUEST_ANNOUNCE (1ULL << 21)

#define VIRTIO_NET_S_LINK_UP  1
#define VIRTIO_NET_S_ANNOUNCE 2

struct virtio_net_state {
	struct virtio_mmio_state transport;
	struct mac_nat mac;        /* the guest's MAC (config space) and the wire's */
	uint16_t status;           /* VIRTIO_NET_S_*, as the config space shows it */
};

struct net_stats {
	uint64_t tx_frames, rx_frames;  /* moved whole */
	uint64_t tx_dropped;            /* the TAP refused them (full, down, none) */
	uint64_t rx_dropped;            /* larger than the guest's buffer */
	uint64_t bad_frames;            /* the guest's: shorter than a header, offloads never offered */
	uint64_t bad_ctrl;              /* control commands malformed or unknown */
	uint64_t announces;             /* ANNOUNCE_ACKs from the guest */
};

void virtio_net_stats(void *dev, struct net_stats *s);

extern const struct device_type virtio_net_device;

#endif
