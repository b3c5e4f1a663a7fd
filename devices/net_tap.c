/* A TAP device as virtio-net's backend (devices/net_tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/net_tap.h"

int tap_open(const char *name)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd, err;

	if (!*name || strlen(name) >= sizeof(ifr.ifr_name)) {
		pr_err("virtio-net: TAP name '%s': give 1 to %zu characters", name,
		       sizeof(ifr.ifr_name) - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_err("virtio-net: /dev/net/tun: %s", strerror(errno));
		return err;
	}
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		pr_err("virtio-net: TAP %s: %s", name, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}
