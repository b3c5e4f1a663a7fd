/*
 * A vsock server for the Linux test guests (tests/test_linux_vsock.c),
 * static, as busybox has no vsock: listen on PORT; to each connection say
 * who answers, then echo its bytes back until EOF. Each connection has a
 * process of its own, which tells the console how its connection ended.
 *
 * Who answers: the CID the guest's kernel holds (IOCTL_VM_SOCKETS_GET_LOCAL_CID
 * on /dev/vsock: what its driver read from the device's config, at probe
 * or at a TRANSPORT_RESET), and 8 bytes of getrandom() drawn for this
 * connection (clones of one template draw different ones once VMGenID has
 * reseeded them). Usage: vsock-echo PORT
 *
 * Or a client: vsock-echo -c PORT TEXT connects to the host (CID 2) on
 * PORT, sends TEXT and a newline, and prints the line it gets back.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vsock_util.h"

static void serve(int fd, unsigned peer_port)
{
	unsigned char rnd[8];
	char buf[4096];
	ssize_t n;
	int len;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	len = snprintf(buf, sizeof(buf), "cid=%u rnd=%02x%02x%02x%02x%02x%02x%02x%02x\n", local_cid(),
		       rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (write_all(fd, buf, (size_t)len) < 0) {
		printf("vsock-echo: peer %u ended: %s\n", peer_port, strerror(errno));
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, (size_t)n) < 0)
			break;
	printf("vsock-echo: peer %u ended: %s\n", peer_port, n == 0 ? "EOF" : strerror(errno));
}

static int client(unsigned port, const char *text)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port };
	char line[256];
	size_t n = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		printf("vsock-echo: connect %u: %s\n", port, strerror(errno));
		return 1;
	}
	if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0) {
		printf("vsock-echo: write %u: %s\n", port, strerror(errno));
		return 1;
	}
	while (n + 1 < sizeof(line) && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	printf("vsock-echo: host %u said: %s\n", port, line);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
	socklen_t alen;
	int lfd, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "-c"))
		return client((unsigned)atoi(argv[2]), argv[3]);
	if (argc != 2)
		return 2;
	signal(SIGCHLD, SIG_IGN); /* no zombies */
	addr.svm_port = (unsigned)atoi(argv[1]);
	lfd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0) {
		printf("vsock-echo: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	printf("vsock-echo: listening on port %u, cid %u\n", addr.svm_port, local_cid());
	for (;;) {
		alen = sizeof(addr);
		fd = accept(lfd, (struct sockaddr *)&addr, &alen);
		if (fd < 0)
			continue;
		if (fork() == 0) {
			close(lfd);
			serve(fd, addr.svm_port);
			_exit(0);
		}
		close(fd);
	}
}
