/* A function's template, booted until ready or restored (server/template.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "fork/snapdir.h"
#include "fork/vmm.h"
#include "server/invoke.h"
#include "server/serve_config.h"
#include "server/template.h"
#include "vmm/vm.h"

#define READY_POLL_MS 100

/* Listen on the socket the guest's connection to ready_port arrives at. */
static int listen_ready(struct vm *vm, unsigned port, struct sockaddr_un *sa)
{
	const char *path = invoke_vsock_path(vm);
	int fd, n, ret;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s_%u", path, port);
	if (!*path || n >= (int)sizeof(sa->sun_path))
		return *path ? -ENAMETOOLONG : -EINVAL;
	unlink(sa->sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 4) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* Until the guest connects (0), stops (-ECHILD) or timeout_ms pass (-ETIMEDOUT). */
static int wait_ready(struct vm *vm, int lfd, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	char line[16] = "";
	int fd;

	while (poll(&p, 1, READY_POLL_MS) <= 0) {
		if (vm_stop_reason(vm) != VM_RUNNING)
			return -ECHILD;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* What it says is only logged: the connection is the signal. */
	p.fd = fd;
	if (poll(&p, 1, READY_POLL_MS * 10) > 0 && read(fd, line, sizeof(line) - 1) > 0)
		line[strcspn(line, "\r\n")] = '\0';
	pr_debug("template: VM %llu is ready ('%s')", (unsigned long long)vm->id, line);
	close(fd);
	return 0;
}

static int boot(struct vmm *vmm, const struct serve_function *f, const char *console,
		struct vm **out)
{
	struct vm_config cfg = { .mem_size = f->mem, .ncpus = f->cpus, .console = console,
				 .kernel = f->kernel, .initrd = f->initrd, .cmdline = f->cmdline };
	struct sockaddr_un sa;
	struct vm *vm;
	int ret, lfd;

	cfg.devices.args[device_by_option("vsock")] = f->vsock;
	cfg.devices.args[device_by_option("rng")] = "";
	ret = vm_create(&vm, &vmm->kvm, &cfg);
	if (ret < 0)
		return ret;
	ret = vm_boot(vm, &cfg);
	if (!ret)
		ret = vmm_add(vmm, vm);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	lfd = listen_ready(vm, f->ready_port, &sa);
	ret = lfd < 0 ? lfd : vm_start(vm);
	if (!ret)
		ret = wait_ready(vm, lfd, f->ready_timeout_ms);
	if (!ret)
		ret = vm_pause(vm);
	if (lfd >= 0) {
		close(lfd);
		unlink(sa.sun_path);
	}
	*out = vm;
	return ret;
}

static int restore(struct vmm *vmm, const struct serve_function *f, const char *console,
		   struct vm **out)
{
	struct snapshot_image img;
	int ret = snapshot_open(f->snapshot, vmm->kvm.supported_cpuid, &img);

	int vsock = device_by_option("vsock");

	if (ret < 0)
		return ret;
	/*
	 * The function's socket, not the one it was saved with: that one's
	 * directory may be gone, or another VM's. Its guest must have had
	 * vsock on, or nothing could reach its function.
	 */
	if (!img.state.devs[vsock].on) {
		pr_err("%s: snapshot %s has no vsock device", f->name, f->snapshot);
		snapshot_close(&img);
		return -EINVAL;
	}
	snprintf(img.state.devs[vsock].arg, sizeof(img.state.devs[vsock].arg), "%s", f->vsock);
	ret = vm_restore(vmm, &img, 1, console, out);
	snapshot_close(&img);
	return ret;
}

int template_start(struct vmm *vmm, const struct serve_function *f, const char *console,
		   struct vm **out)
{
	struct vm *vm = NULL;
	int ret = f->snapshot ? restore(vmm, f, console, &vm) : boot(vmm, f, console, &vm);

	if (ret < 0) {
		pr_err("%s: its template %s: %s", f->name,
		       ret == -ETIMEDOUT ? "was not ready in time" :
		       ret == -ECHILD ? "stopped before it was ready" : "failed", strerror(-ret));
		if (vm)
			vmm_remove(vmm, vm->id);
		return ret;
	}
	vmm_ref(vmm, vm);
	*out = vm;
	return 0;
}
