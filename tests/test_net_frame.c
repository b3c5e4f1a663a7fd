/* A clone's own MAC on the wire: devices/net_frame.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/net_frame.h"

static const struct mac_nat nat = {
	.guest = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x01 },
	.wire = { 0x06, 0xaa, 0xbb, 0xcc, 0xdd, 0xee },
};
static const uint8_t peer[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* An Ethernet ARP frame: dst, src, then op with sender and target MACs. */
static size_t arp_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, int op,
			const uint8_t *sha, const uint8_t *tha)
{
	static const uint8_t head[] = { 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0 };

	memset(f, 0, 64);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	memcpy(f + 12, head, sizeof(head));
	f[21] = (uint8_t)op;
	memcpy(f + 22, sha, 6);
	memcpy(f + 32, tha, 6);
	return 60;
}

Test(net_frame, outgoing_arp_request_carries_the_clones_mac)
{
	uint8_t f[64], zero[6] = { 0 };
	size_t n = arp_frame(f, bcast, nat.guest, 1, nat.guest, zero);

	mac_nat_outgoing(&nat, f, n);
	cr_expect_arr_eq(f, bcast, 6);
	cr_expect_arr_eq(f + 6, nat.wire, 6, "Ethernet source");
	cr_expect_arr_eq(f + 22, nat.wire, 6, "ARP sender");
	cr_expect_arr_eq(f + 32, zero, 6, "ARP target untouched");
}

Test(net_frame, incoming_reply_reaches_the_guest_as_its_own)
{
	uint8_t f[64];
	size_t n = arp_frame(f, nat.wire, peer, 2, peer, nat.wire);

	mac_nat_incoming(&nat, f, n);
	cr_expect_arr_eq(f, nat.guest, 6, "Ethernet destination");
	cr_expect_arr_eq(f + 6, peer, 6);
	cr_expect_arr_eq(f + 22, peer, 6);
	cr_expect_arr_eq(f + 32, nat.guest, 6, "ARP target");
}

Test(net_frame, other_frames_and_short_ones_are_left_alone)
{
	uint8_t f[64], copy[64];
	size_t n = arp_frame(f, peer, nat.guest, 1, nat.guest, peer);

	f[12] = 0x08, f[13] = 0x00; /* IPv4, not ARP: only the Ethernet source changes */
	mac_nat_outgoing(&nat, f, n);
	cr_expect_arr_eq(f + 6, nat.wire, 6);
	cr_expect_arr_eq(f + 22, nat.guest, 6, "an IPv4 payload is not an ARP body");
	memcpy(copy, f, sizeof(f));
	mac_nat_outgoing(&nat, f, 13);
	cr_expect_arr_eq(f, copy, 64, "a frame shorter than a header");
}

Test(net_frame, a_booted_vm_is_not_translated)
{
	struct mac_nat same = { .guest = { 2, 0, 0, 0, 0, 1 }, .wire = { 2, 0, 0, 0, 0, 1 } };
	uint8_t f[64], copy[64];
	size_t n = arp_frame(f, bcast, same.guest, 1, same.guest, peer);

	memcpy(copy, f, sizeof(f));
	mac_nat_outgoing(&same, f, n);
	mac_nat_incoming(&same, f, n);
	cr_expect_arr_eq(f, copy, 64);
}

Test(net_frame, macs_parse_and_random_ones_are_local_unicast)
{
	uint8_t m[6];

	cr_expect_eq(mac_parse("52:54:00:12:34:56", m), 0);
	cr_expect_eq(m[5], 0x56);
	cr_expect_eq(mac_parse("53:54:00:12:34:56", m), -EINVAL, "multicast");
	cr_expect_eq(mac_parse("52:54:00:12:34", m), -EINVAL);
	cr_expect_eq(mac_parse("52:54:00:12:34:56:78", m), -EINVAL);
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(mac_random(m), 0);
		cr_expect_eq(m[0] & 3, 2);
	}
}
