/*
 * virtio-vsock (`run --vsock PATH[,cid=N]`) on virtio-mmio slot 2, in
 * Firecracker's "hybrid" style: no vhost, no host kernel module. The host
 * side of every guest connection is a Unix socket:
 *   host to guest: a client connects to PATH, writes "CONNECT <port>\n" and
 *     reads "OK <hostport>\n", then a byte stream to the guest's listener on
 *     <port> (a refused connection is closed instead);
 *   guest to host: a guest connecting to CID 2 port P reaches the Unix
 *     socket "PATH_P" (reset when nothing listens there).
 * Each VM has its own PATH and CID: "%u" in the argument becomes the VM's
 * clone id (0 for a booted VM); without it a clone k uses "PATH.clone-k";
 * a VM's CID is N + its clone id (N defaults to 3). A clone or a restored VM
 * starts with no connections and a TRANSPORT_RESET event, so the guest drops
 * the ones it had and reads its new CID; its listeners stay. docs/vsock.md.
 *
 * The data moves on an I/O thread per device (epoll over the listener, the
 * connections and an eventfd the queue notifications kick), under the
 * transport's lock, and only while the VM's vCPUs run (set_running).
 */
#ifndef DEVICES_VIRTIO_VSOCK_H
#define DEVICES_VIRTIO_VSOCK_H

#include <stdint.h>

#include "core/device.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_VSOCK_SLOT 2
#define VIRTIO_VSOCK_ID   19
#define VIRTIO_VSOCK_DEFAULT_CID 3

struct virtio_vsock_state {
	struct virtio_mmio_state transport;
	uint64_t guest_cid;        /* what the config space says; host fds are not state */
	/*
	 * The next host port for a host client. A clone goes on from its
	 * parent's, so that no new connection reuses the address of one the
	 * guest still holds (reset, but maybe not yet closed): Linux would
	 * find the old socket and refuse the new one.
	 */
	uint32_t next_host_port;
};

/* Counters, for tests and reports. */
struct vsock_stats {
	uint64_t host_connects;     /* host clients that reached a guest listener */
	uint64_t guest_connects;    /* guest connections that reached PATH_P */
	uint64_t refused;           /* connections either way refused: RST, no socket, table full */
	uint64_t bad_packets;       /* malformed: header, length, type, op, addresses, protocol */
	uint64_t credit_violations; /* the guest sent more than the credit it was given */
	uint64_t rst_dropped;       /* RST replies dropped because their queue was full */
	uint64_t timeouts;          /* connections given up: no command, no answer, no close */
	uint64_t transport_resets;  /* TRANSPORT_RESET events delivered */
	uint64_t bad_chains;        /* rx, tx or event buffers of the wrong shape */
};

void virtio_vsock_stats(void *dev, struct vsock_stats *s);
/* The socket path this VM listens on ("" before attach()). */
const char *virtio_vsock_path(void *dev);
/*
 * The socket path a VM with clone id gets from the argument arg
 * (PATH[,cid=N]), as attach() makes it: for a VM in another process.
 * 0 or -errno (logged).
 */
int virtio_vsock_path_of(const char *arg, uint64_t id, char *out, size_t size);

extern const struct device_type virtio_vsock_device;

#endif
