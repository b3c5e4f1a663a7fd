/*
 * A clone's own MAC on the wire. Linux's virtio-net driver reads the MAC
 * from the device once, when it probes, and never again: a clone's guest
 * keeps the MAC its template booted with. So the device translates: frames
 * the guest sends from its MAC leave with the clone's, frames to the
 * clone's reach the guest as to its own, and ARP bodies likewise, so that
 * every neighbour sees the clone's MAC alone. (IPv6 neighbour discovery
 * options are not translated: vm-fork's guests speak IPv4 on it.)
 */
#ifndef DEVICES_NET_FRAME_H
#define DEVICES_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define ETH_ALEN_ 6

struct mac_nat {
	uint8_t guest[ETH_ALEN_]; /* what the guest believes is its MAC */
	uint8_t wire[ETH_ALEN_];  /* what the world sees (the same for a booted VM) */
};

/* Rewrite a frame the guest sent (guest -> wire). */
void mac_nat_outgoing(const struct mac_nat *nat, uint8_t *frame, size_t len);
/* Rewrite a frame for the guest (wire -> guest). */
void mac_nat_incoming(const struct mac_nat *nat, uint8_t *frame, size_t len);
/* A random unicast, locally administered MAC. Returns 0 or -errno. */
int mac_random(uint8_t mac[ETH_ALEN_]);
/* Parse "aa:bb:cc:dd:ee:ff": 0 or -EINVAL. */
int mac_parse(const char *text, uint8_t mac[ETH_ALEN_]);

#endif
