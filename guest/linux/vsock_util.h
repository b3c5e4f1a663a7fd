/* What the static vsock programs of the Linux test guests share (header-only: each is one file). */
#ifndef GUEST_LINUX_VSOCK_UTIL_H
#define GUEST_LINUX_VSOCK_UTIL_H

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The CID the guest's kernel holds: what its driver read from the device (a clone's own). */
static inline unsigned local_cid(void)
{
	unsigned cid = 0;
	int fd = open("/dev/vsock", O_RDONLY);

	if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		cid = 0;
	if (fd >= 0)
		close(fd);
	return cid;
}

static inline int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

#endif
