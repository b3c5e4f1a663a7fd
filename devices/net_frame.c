/* A clone's own MAC on the wire (devices/net_frame.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "devices/net_frame.h"

#define ETH_HDR      14
#define ETHERTYPE_ARP 0x0806
/* An Ethernet/IPv4 ARP body: htype, ptype, hlen 6, plen 4, op, sha, spa, tha, tpa. */
#define ARP_LEN      28
#define ARP_SHA      8
#define ARP_THA      18

static bool is_ether_arp(const uint8_t *frame, size_t len)
{
	const uint8_t *arp = frame + ETH_HDR;

	return len >= ETH_HDR + ARP_LEN && frame[12] == (ETHERTYPE_ARP >> 8) &&
	       frame[13] == (ETHERTYPE_ARP & 0xff) && arp[0] == 0 && arp[1] == 1 &&
	       arp[2] == 0x08 && arp[3] == 0 && arp[4] == ETH_ALEN_ && arp[5] == 4;
}

static void swap_mac(uint8_t *at, const uint8_t *from, const uint8_t *to)
{
	if (!memcmp(at, from, ETH_ALEN_))
		memcpy(at, to, ETH_ALEN_);
}

/* The source and ARP sender (out), or destination and ARP target (in), from -> to. */
static void translate(uint8_t *frame, size_t len, const uint8_t *from, const uint8_t *to,
		      size_t eth_off, size_t arp_off)
{
	if (!memcmp(from, to, ETH_ALEN_) || len < ETH_HDR)
		return;
	swap_mac(frame + eth_off, from, to);
	if (is_ether_arp(frame, len))
		swap_mac(frame + ETH_HDR + arp_off, from, to);
}

void mac_nat_outgoing(const struct mac_nat *nat, uint8_t *frame, size_t len)
{
	translate(frame, len, nat->guest, nat->wire, ETH_ALEN_, ARP_SHA);
}

void mac_nat_incoming(const struct mac_nat *nat, uint8_t *frame, size_t len)
{
	translate(frame, len, nat->wire, nat->guest, 0, ARP_THA);
}

int mac_random(uint8_t mac[ETH_ALEN_])
{
	if (getrandom(mac, ETH_ALEN_, 0) != ETH_ALEN_)
		return -errno;
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
	return 0;
}

int mac_parse(const char *text, uint8_t mac[ETH_ALEN_])
{
	unsigned b[ETH_ALEN_];
	char end;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != ETH_ALEN_ || strlen(text) != 17)
		return -EINVAL;
	for (int i = 0; i < ETH_ALEN_; i++)
		mac[i] = (uint8_t)b[i];
	return mac[0] & 1 ? -EINVAL : 0;
}
