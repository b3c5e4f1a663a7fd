/*
 * virtio-net on a TAP, without a guest (tests/virtio_driver.h drives it):
 * frames both ways, a clone's own MAC on the wire and its announce, the
 * control queue, hostile chains, the arguments. Each test makes its TAPs in
 * a network namespace of its own (Criterion runs a test in its own process),
 * and reads and writes the wire through a packet socket on the TAP.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/process_stats.h"
#include "core/layout.h"
#include "devices/virtio_net.h"
#include "devices/virtqueue.h"
#include "tests/virtio_driver.h"

enum { RXQ, TXQ, CTRLQ };

#define HDR       12
#define ETHERTYPE 0x88b5              /* IEEE's local experimental type: nothing else sends it */
#define FEATURES  ((uint32_t)(VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ | \
			      VIRTIO_NET_F_GUEST_ANNOUNCE))
#define RX_BUFS   8
#define RX_LEN    (HDR + 1518)

static const uint8_t guest_mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };

static void own_netns(void)
{
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s (the tests run as root)",
		     strerror(errno));
}

/* Up, and quiet: without IPv6 the host's stack sends the guest nothing of its own. */
static void tap_up(const char *tap)
{
	struct ifreq ifr = { .ifr_flags = IFF_UP };
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", tap);
	f = fopen(path, "w");
	if (f)
		cr_assert(fputs("1", f) >= 0 && fclose(f) == 0, "%s: %s", path, strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	cr_assert(s >= 0 && ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "%s up: %s", tap, strerror(errno));
	close(s);
}

/* Configure and attach VM d's device with arg, running, and bring its TAP (if named) up. */
static void net_up(struct vdrv *d, const char *arg, const char *tap)
{
	cr_assert_eq(virtio_net_device.configure(d->dev, arg), 0, "configure %s", arg);
	cr_assert_eq(virtio_net_device.attach(d->dev), 0);
	virtio_net_device.set_running(d->dev, true);
	if (tap)
		tap_up(tap);
}

/* A packet socket on the TAP: it receives what the guest sent, and sends to the guest. */
static int wire(const char *tap)
{
	struct sockaddr_ll sa = { .sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE),
				  .sll_ifindex = (int)if_nametoindex(tap) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETHERTYPE));

	cr_assert(fd >= 0 && sa.sll_ifindex && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		  "packet socket on %s: %s", tap, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void post_rx(struct vdrv *d, unsigned i, uint32_t len)
{
	vdrv_desc(d, RXQ, i, VD_BUF(RXQ, i), len, VIRTQ_DESC_F_WRITE, 0);
	vdrv_offer(d, RXQ, (uint16_t)i);
}

static void driver_start(struct vdrv *d)
{
	vdrv_start(d, FEATURES, 3);
	for (unsigned i = 0; i < RX_BUFS; i++)
		post_rx(d, i, RX_LEN);
}

static size_t frame(uint8_t *out, const uint8_t *dst, const uint8_t *src, const char *text)
{
	uint16_t type = htons(ETHERTYPE);

	memcpy(out, dst, 6);
	memcpy(out + 6, src, 6);
	memcpy(out + 12, &type, 2);
	strcpy((char *)out + 14, text);
	return 14 + strlen(text) + 1;
}

/* The guest sends bytes (header included) as one readable buffer; they were taken. */
static void guest_send(struct vdrv *d, const void *bytes, uint32_t len)
{
	uint32_t head, used;

	cr_assert_eq(guest_write(&d->mem, VD_BUF(TXQ, 0), bytes, len), 0);
	vdrv_desc(d, TXQ, 0, VD_BUF(TXQ, 0), len, 0, 0);
	vdrv_offer(d, TXQ, 0);
	cr_assert(vdrv_next_used(d, TXQ, VD_WAIT_MS, &head, &used), "tx buffer never taken");
}

static void guest_send_frame(struct vdrv *d, const uint8_t *dst, const char *text)
{
	uint8_t buf[HDR + 128] = { 0 };

	guest_send(d, buf, HDR + (uint32_t)frame(buf + HDR, dst, guest_mac, text));
}

/* The next frame for the guest: its length (without the header), the frame in out. */
static size_t guest_receive(struct vdrv *d, uint8_t *out)
{
	uint8_t buf[RX_LEN];
	uint32_t head, len;

	cr_assert(vdrv_next_used(d, RXQ, VD_WAIT_MS, &head, &len), "no frame for the guest");
	cr_assert_gt(len, HDR + 14);
	guest_read(&d->mem, VD_BUF(RXQ, head), buf, len);
	cr_expect_eq(buf[10] | buf[11] << 8, 1, "num_buffers");
	memcpy(out, buf + HDR, len - HDR);
	post_rx(d, head, RX_LEN);
	return len - HDR;
}

static void mac_of(struct vdrv *d, uint8_t *mac)
{
	for (unsigned i = 0; i < 6; i++)
		mac[i] = vdrv_config(d, i);
}

static uint16_t status_of(struct vdrv *d)
{
	return (uint16_t)(vdrv_config(d, 6) | vdrv_config(d, 7) << 8);
}

Test(virtio_net, device_id_features_config)
{
	struct vdrv d;
	uint8_t mac[6];

	own_netns();
	vdrv_make(&d, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	cr_expect_eq(vdrv_rd(&d, VD_DEVICE_ID), 0, "absent until configured");
	net_up(&d, "tap:vmfn%u,mac=02:00:00:00:00:42", "vmfn0");
	cr_expect_eq(vdrv_rd(&d, VD_DEVICE_ID), VIRTIO_NET_ID);
	vdrv_wr(&d, VD_DEV_FEAT_SEL, 0);
	cr_expect_eq(vdrv_rd(&d, VD_DEV_FEAT), FEATURES, "no offload is offered, so none is asked");
	mac_of(&d, mac);
	cr_expect_arr_eq(mac, guest_mac, 6);
	cr_expect_eq(status_of(&d), VIRTIO_NET_S_LINK_UP);
	vdrv_free(&d);
}

Test(virtio_net, frames_go_both_ways)
{
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, peer[6] = { 2, 9, 9, 9, 9, 9 };
	uint8_t buf[1600];
	struct vdrv d;
	int w;

	own_netns();
	vdrv_make(&d, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	net_up(&d, "tap:vmfn%u,mac=02:00:00:00:00:42", "vmfn0");
	w = wire("vmfn0");
	driver_start(&d);
	guest_send_frame(&d, bcast, "from the guest");
	cr_assert_gt(recv(w, buf, sizeof(buf), 0), 14, "nothing on the wire");
	cr_expect_arr_eq(buf + 6, guest_mac, 6, "a booted VM's MAC is the one its guest has");
	cr_expect_str_eq((char *)buf + 14, "from the guest");
	cr_assert_eq(send(w, buf, frame(buf, guest_mac, peer, "to the guest"), 0), 14 + 13);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(guest_receive(&d, buf), 14 + 13);
	cr_expect_arr_eq(buf, guest_mac, 6);
	cr_expect_str_eq((char *)buf + 14, "to the guest");
	close(w);
	vdrv_free(&d);
}

/* The rings and buffers (the first 8 MiB), as a fork shares them. */
static void copy_ram(struct vdrv *to, const struct vdrv *from)
{
	static uint8_t chunk[64 * 1024];

	for (uint64_t a = 0; a < 8 * MiB; a += sizeof(chunk)) {
		cr_assert_eq(guest_read(&from->mem, a, chunk, sizeof(chunk)), 0);
		cr_assert_eq(guest_write(&to->mem, a, chunk, sizeof(chunk)), 0);
	}
}

/* The parent's state into a clone with id (its TAP vmfn<id>), as a fork does. */
static void make_clone(struct vdrv *parent, struct vdrv *clone, uint64_t id, const char *arg,
		       const char *rebind)
{
	static uint8_t state[DEVICE_STATE_MAX];

	virtio_net_device.save(parent->dev, state);
	cr_assert_eq(virtio_net_device.check(state), 0);
	vdrv_make(clone, &virtio_net_device, VIRTIO_NET_SLOT, id);
	memcpy(clone->avail, parent->avail, sizeof(clone->avail));
	memcpy(clone->seen, parent->seen, sizeof(clone->seen));
	copy_ram(clone, parent);
	cr_assert_eq(virtio_net_device.configure(clone->dev, arg), 0);
	cr_assert_eq(virtio_net_device.restore(clone->dev, state), 0);
	cr_assert_eq(virtio_net_device.forked(clone->dev), 0);
	if (rebind)
		cr_assert_eq(virtio_net_device.rebind(clone->dev, rebind), 0);
	cr_assert_eq(virtio_net_device.attach(clone->dev), 0);
	virtio_net_device.set_running(clone->dev, true);
}

/* A clone: its own MAC on the wire both ways (ARP too), the guest's unchanged, and an announce. */
Test(virtio_net, clone_has_its_own_mac_and_announces)
{
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, peer[6] = { 2, 9, 9, 9, 9, 9 };
	struct vdrv parent, clone;
	uint8_t buf[1600], wire_mac[6], mac[6], ctrl[3] = { 3, 0, 0xee };
	uint32_t head, len;
	int w;

	own_netns();
	vdrv_make(&parent, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	net_up(&parent, "tap:vmfn%u,mac=02:00:00:00:00:42", "vmfn0");
	driver_start(&parent);
	virtio_net_device.set_running(parent.dev, false);
	make_clone(&parent, &clone, 1, "tap:vmfn%u,mac=02:00:00:00:00:42", NULL);
	tap_up("vmfn1");
	w = wire("vmfn1");
	mac_of(&clone, mac);
	cr_expect_arr_eq(mac, guest_mac, 6, "the guest's MAC stays what its driver read");
	cr_expect_eq(status_of(&clone), VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	cr_expect_eq(vdrv_rd(&clone, VD_INT_STATUS) & 2, 2, "no config interrupt for the announce");

	guest_send_frame(&clone, bcast, "clone");
	cr_assert_gt(recv(w, buf, sizeof(buf), 0), 14, "nothing on the clone's wire");
	memcpy(wire_mac, buf + 6, 6);
	cr_expect(memcmp(wire_mac, guest_mac, 6), "the clone went out with its parent's MAC");
	cr_expect_eq(wire_mac[0] & 3, 2, "a unicast, locally administered MAC");
	cr_assert_eq(send(w, buf, frame(buf, wire_mac, peer, "to the clone"), 0), 14 + 13);
	cr_assert_eq(guest_receive(&clone, buf), 14 + 13);
	cr_expect_arr_eq(buf, guest_mac, 6, "the guest sees frames to its own MAC");

	/* The driver's ANNOUNCE_ACK: the bit goes, the command is answered OK. */
	guest_write(&clone.mem, VD_BUF(CTRLQ, 0), ctrl, 3);
	vdrv_desc(&clone, CTRLQ, 0, VD_BUF(CTRLQ, 0), 2, VIRTQ_DESC_F_NEXT, 1);
	vdrv_desc(&clone, CTRLQ, 1, VD_BUF(CTRLQ, 0) + 2, 1, VIRTQ_DESC_F_WRITE, 0);
	vdrv_offer(&clone, CTRLQ, 0);
	cr_assert(vdrv_next_used(&clone, CTRLQ, VD_WAIT_MS, &head, &len));
	guest_read(&clone.mem, VD_BUF(CTRLQ, 0) + 2, ctrl + 2, 1);
	cr_expect_eq(len, 1);
	cr_expect_eq(ctrl[2], 0, "ANNOUNCE_ACK answered %u", ctrl[2]);
	cr_expect_eq(status_of(&clone), VIRTIO_NET_S_LINK_UP);
	close(w);
	vdrv_free(&clone);
	vdrv_free(&parent);
}

/* What the guest's driver may send: garbage is counted and dropped, the device serves on. */
Test(virtio_net, hostile_chains_are_counted_and_dropped)
{
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, peer[6] = { 2, 9, 9, 9, 9, 9 };
	uint8_t buf[1600] = { 0 }, gso[HDR + 64] = { 0, 1 /* gso_type */ };
	struct net_stats st;
	uint32_t head, len;
	struct vdrv d;
	int w;

	own_netns();
	vdrv_make(&d, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	net_up(&d, "tap:vmfn%u,mac=02:00:00:00:00:42", "vmfn0");
	w = wire("vmfn0");
	vdrv_start(&d, FEATURES, 3);
	guest_send(&d, buf, 5);                              /* shorter than a header */
	guest_send(&d, gso, sizeof(gso));                    /* an offload never offered */
	vdrv_desc(&d, TXQ, 0, 15 * MiB, 4 * MiB, 0, 0);      /* beyond RAM */
	vdrv_offer(&d, TXQ, 0);
	cr_assert(vdrv_next_used(&d, TXQ, VD_WAIT_MS, &head, &len));
	vdrv_desc(&d, TXQ, 0, VD_BUF(TXQ, 0), 64, VIRTQ_DESC_F_NEXT, 0); /* a loop */
	vdrv_offer(&d, TXQ, 0);
	cr_assert(vdrv_next_used(&d, TXQ, VD_WAIT_MS, &head, &len));
	/* Receive buffers too short for a frame, and ones the device may not write. */
	post_rx(&d, 0, HDR + 20);
	vdrv_desc(&d, RXQ, 1, VD_BUF(RXQ, 1), RX_LEN, 0, 0);
	vdrv_offer(&d, RXQ, 1);
	cr_assert_eq(send(w, buf, frame(buf, guest_mac, peer, "a frame longer than 20 bytes"), 0),
		     14 + 29);
	cr_assert(vdrv_next_used(&d, RXQ, VD_WAIT_MS, &head, &len));
	cr_expect_eq(len, 0, "a frame that does not fit goes back as an empty buffer");
	virtio_net_stats(d.dev, &st);
	cr_expect_eq(st.bad_frames, 2, "bad frames: %llu", (unsigned long long)st.bad_frames);
	cr_expect_eq(st.rx_dropped, 1);
	cr_expect_eq(st.tx_frames, 0);
	/* A proper frame after all that still goes out. */
	guest_send_frame(&d, bcast, "still here");
	cr_assert_gt(recv(w, buf, sizeof(buf), 0), 14);
	cr_expect_str_eq((char *)buf + 14, "still here");
	close(w);
	vdrv_free(&d);
}

Test(virtio_net, arguments_are_checked)
{
	const char *bad[] = { "", "tap:", "tap", "tun:x", "tap:x,mac=zz", "tap:x,mac=01:00:00:00:00:01",
			      "tap:x,foo=1", "tap:0123456789abcdef", NULL };
	struct vdrv d;

	for (const char **a = bad; *a; a++) {
		vdrv_make(&d, &virtio_net_device, VIRTIO_NET_SLOT, 0);
		cr_expect_lt(virtio_net_device.configure(d.dev, *a), 0, "'%s' taken", *a);
		cr_expect_eq(vdrv_rd(&d, VD_DEVICE_ID), 0, "'%s' refused, yet the device shows", *a);
		vdrv_free(&d);
	}
	vdrv_make(&d, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	cr_expect_eq(virtio_net_device.configure(d.dev, "tap:vm-tap%u,mac=02:aa:bb:cc:dd:ee"), 0);
	cr_expect_lt(virtio_net_device.rebind(d.dev, "tap:"), 0);
	vdrv_free(&d);
}

/* A clone of a TAP name without %u has no TAP of its own: its link is down, its frames dropped. */
Test(virtio_net, clone_without_a_tap_has_no_link)
{
	struct vdrv parent, clone;
	struct net_stats st;
	uint8_t buf[HDR + 64] = { 0 };

	own_netns();
	vdrv_make(&parent, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	net_up(&parent, "tap:vmfn", "vmfn");
	driver_start(&parent);
	make_clone(&parent, &clone, 2, "tap:vmfn", NULL);
	cr_expect_eq(status_of(&clone) & VIRTIO_NET_S_LINK_UP, 0);
	guest_send(&clone, buf, HDR + 20);
	virtio_net_stats(clone.dev, &st);
	cr_expect_eq(st.tx_dropped, 1);
	vdrv_free(&clone);
	vdrv_free(&parent);
}

/* A fork request's TAP and MAC for one clone, in place of the template's. */
Test(virtio_net, rebind_gives_a_clone_its_own_tap_and_mac)
{
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, want[6] = { 2, 1, 2, 3, 4, 5 };
	struct vdrv parent, clone;
	uint8_t buf[1600];
	int w;

	own_netns();
	vdrv_make(&parent, &virtio_net_device, VIRTIO_NET_SLOT, 0);
	net_up(&parent, "tap:vmfn%u,mac=02:00:00:00:00:42", "vmfn0");
	driver_start(&parent);
	make_clone(&parent, &clone, 7, "tap:vmfn%u,mac=02:00:00:00:00:42", "tap:other,mac=02:01:02:03:04:05");
	cr_expect_eq(if_nametoindex("vmfn7"), 0, "the template's TAP was opened anyway");
	tap_up("other");
	w = wire("other");
	guest_send_frame(&clone, bcast, "rebound");
	cr_assert_gt(recv(w, buf, sizeof(buf), 0), 14);
	cr_expect_arr_eq(buf + 6, want, 6, "the clone's MAC is not the one asked for");
	close(w);
	vdrv_free(&clone);
	vdrv_free(&parent);
}

Test(virtio_net, destroy_leaves_no_fd)
{
	struct vdrv d;
	unsigned before;

	own_netns();
	before = process_open_fds();
	for (unsigned i = 0; i < 100; i++) {
		vdrv_make(&d, &virtio_net_device, VIRTIO_NET_SLOT, i);
		net_up(&d, "tap:vmfn%u", NULL);
		vdrv_free(&d);
	}
	cr_expect_eq(process_open_fds(), before);
}
