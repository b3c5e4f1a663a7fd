/* A TAP device as virtio-net's backend: whole Ethernet frames, no packet info, non-blocking. */
#ifndef DEVICES_NET_TAP_H
#define DEVICES_NET_TAP_H

/* Open the existing or new TAP interface name: an fd, or -errno with the reason logged. */
int tap_open(const char *name);

#endif
