/*
 * virtio-net seen from Linux: a template on a TAP device, forked into two
 * clones that each get their own TAP (--net tap:NAME%u) and their own MAC on
 * the wire; all in a network namespace the test makes, so nothing reaches
 * the host's network.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

Test(linux_net, clones_answer_pings_with_their_own_macs, .timeout = 600)
{
	const char *extra[] = { "--net", "tap:vmtap%u", NULL };
	char *kernel = linux_small_kernel(), *out, cli[4096], macs[3][32], tap[16];
	struct linux_vm vm;

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "a network namespace of the test's own");
	for (unsigned i = 0; i < 3; i++) {
		snprintf(tap, sizeof(tap), "vmtap%u", i);
		sh("ip tuntap add dev %s mode tap", tap);
	}
	linux_start(&vm, kernel, net_init, NULL, extra);
	out = linux_wait_for(&vm, vm.console, net_ready, 240);
	cr_assert(net_ready(out), "the guest's network never came up:\n%s",
		  out + (strlen(out) > 3000 ? strlen(out) - 3000 : 0));
	linux_cli(&vm, "pause", cli, sizeof(cli), NULL);
	linux_cli(&vm, "fork", cli, sizeof(cli), "--count", "2", NULL);
	linux_cli(&vm, "resume", cli, sizeof(cli), NULL);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(tap, sizeof(tap), "vmtap%u", i);
		mac_behind(tap, macs[i], sizeof(macs[i]));
		cr_log_info("VM %u answers from %s", i, macs[i]);
	}
	linux_stop(&vm);
	for (unsigned i = 0; i < 3; i++) {
		cr_expect(strlen(macs[i]) == 17, "VM %u: no MAC answered", i);
		for (unsigned j = i + 1; j < 3; j++)
			cr_expect(strcmp(macs[i], macs[j]), "VMs %u and %u answer from one MAC %s", i, j,
				  macs[i]);
	}
	free(out);
	free(kernel);
}
