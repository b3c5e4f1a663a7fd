/*
 * Reseed the guest's CRNG now (RNDRESEEDCRNG), for the identity tests'
 * control (tests/test_linux_identity.c): a CRNG just reseeded does not
 * reseed again for a while, so clones forked soon after share it unless
 * VMGenID tells them apart. Usage: reseed
 */
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/dev/urandom", O_RDONLY);

	if (fd < 0 || ioctl(fd, RNDRESEEDCRNG) < 0) {
		printf("reseed: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}
