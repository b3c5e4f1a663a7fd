/*
 * virtio-net seen from Linux: a template on a TAP device, forked into two
 * clones that each get their own TAP (--net tap:NAME%u) and their own MAC on
 * the wire; all in a network namespace the test makes, so nothing reaches
 * the host's network.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/linux_harness.h"

#define GUEST_IP "10.0.0.2"

static const char net_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sys /sys\n"
	"ip addr add " GUEST_IP "/24 dev eth0 && ip link set eth0 up &&\n"
	"  echo \"vm-fork-init: net ready, $(cat /sys/class/net/eth0/address)\"\n"
	"while :; do sleep 1; done\n";

static void sh(const char *fmt, const char *arg)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg, arg);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static bool net_ready(const char *out)
{
	return strstr(out, "net ready") && strchr(strstr(out, "net ready"), '\n');
}

/* Ping the guest through tap alone, and the MAC that answered (the neighbour table's). */
static void mac_behind(const char *tap, char *mac, size_t len)
{
	char cmd[256];
	FILE *p;

	sh("ip addr add 10.0.0.1/24 dev %s && ip link set %s up", tap);
	snprintf(cmd, sizeof(cmd), "/bin/busybox ping -c 2 -W 10 " GUEST_IP " >/dev/null");
	cr_expect_eq(system(cmd), 0, "no answer to ping through %s", tap);
	snprintf(cmd, sizeof(cmd), "ip neigh show " GUEST_IP " dev %s | awk '{ print $3 }'", tap);
	p = popen(cmd, "r");
	cr_assert(p);
	if (!fgets(mac, (int)len, p))
		mac[0] = 0;
	mac[strcspn(mac, "\n")] = 0;
	pclose(p);
	sh("ip link set %s down && ip addr flush dev %s", tap);
}

/* ARP frames reaching the host through tap (brought up, without an address). */
static int arp_listener(const char *tap)
{
	struct sockaddr_ll sa = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP) };
	struct timeval tv = { .tv_sec = harness_wait_s(60) };
	int fd;

	sh("ip link set %s up", tap);
	sa.sll_ifindex = (int)if_nametoindex(tap);
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ARP));
	cr_assert(fd >= 0 && sa.sll_ifindex && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* The sender MAC of the first gratuitous ARP for GUEST_IP (sender and target address alike). */
static bool announced(int fd, char *mac, size_t len)
{
	uint8_t f[128];
	in_addr_t ip = inet_addr(GUEST_IP);
	ssize_t n;

	while ((n = recv(fd, f, sizeof(f), 0)) >= 42) {
		if (memcmp(f + 28, &ip, 4) || memcmp(f + 38, &ip, 4))
			continue;
		snprintf(mac, len, "%02x:%02x:%02x:%02x:%02x:%02x", f[22], f[23], f[24], f[25], f[26],
			 f[27]);
		return true;
	}
	return false;
}

/*
 * Three clones: two on the TAPs the template's %u names (vmtap1, vmtap2), and
 * one a later fork request put on a TAP of its own choosing (vmother), each
 * answering pings from a MAC of its own.
 */
Test(linux_net, clones_answer_pings_with_their_own_macs, .timeout = 150)
{
	static const char *const taps[] = { "vmtap0", "vmtap1", "vmtap2", "vmother" };
	const char *extra[] = { "--net", "tap:vmtap%u", NULL };
	char *kernel = linux_small_kernel(), *out, cli[4096], macs[4][32], announce[32] = "";
	struct linux_vm vm;
	int arp;

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "a network namespace of the test's own");
	for (unsigned i = 0; i < 4; i++)
		sh("ip tuntap add dev %s mode tap", taps[i]);
	linux_start(&vm, kernel, net_init, NULL, extra);
	out = linux_wait_for(&vm, vm.console, net_ready, 240);
	cr_assert(net_ready(out), "the guest's network never came up:\n%s",
		  out + (strlen(out) > 3000 ? strlen(out) - 3000 : 0));
	linux_cli(&vm, "pause", cli, sizeof(cli), NULL);
	arp = arp_listener("vmtap1");
	linux_cli(&vm, "fork", cli, sizeof(cli), "--count", "2", NULL);
	/* VIRTIO_NET_S_ANNOUNCE: clone 1's guest says where 10.0.0.2 is now, with no one asking. */
	cr_expect(announced(arp, announce, sizeof(announce)), "clone 1 sent no gratuitous ARP");
	close(arp);
	linux_cli(&vm, "resume", cli, sizeof(cli), NULL);
	linux_cli(&vm, "fork", cli, sizeof(cli), "--device", "net=tap:vmother", NULL);
	for (unsigned i = 0; i < 4; i++) {
		mac_behind(taps[i], macs[i], sizeof(macs[i]));
		cr_log_info("VM %u answers on %s from %s", i, taps[i], macs[i]);
	}
	linux_stop(&vm);
	cr_expect_str_eq(announce, macs[1], "clone 1 announced %s, and answers from %s", announce,
			 macs[1]);
	for (unsigned i = 0; i < 4; i++) {
		cr_expect(strlen(macs[i]) == 17, "VM %u: no MAC answered on %s", i, taps[i]);
		for (unsigned j = i + 1; j < 4; j++)
			cr_expect(strcmp(macs[i], macs[j]), "VMs %u and %u answer from one MAC %s", i, j,
				  macs[i]);
	}
	free(out);
	free(kernel);
}
