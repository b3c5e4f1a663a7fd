#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/kvm.h"
#include "core/layout.h"
#include "core/log.h"
#include "core/memory.h"

unsigned guest_mem_layout(uint64_t size, struct mem_region regions[GUEST_MEM_MAX_REGIONS])
{
	uint64_t low = size < LAYOUT_MMIO_HOLE ? size : LAYOUT_MMIO_HOLE;

	regions[0] = (struct mem_region){ .gpa = 0, .size = low, .file_off = 0, .slot = 0 };
	if (size == low)
		return 1;
	regions[1] = (struct mem_region){
		.gpa = LAYOUT_HIGH_RAM, .size = size - low, .file_off = low, .slot = 1,
	};
	return 2;
}

static int open_backing(uint64_t size, const char *path)
{
	int fd;

	if (path)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	else
		/* Sealing is allowed so a frozen base can be made immutable (F_SEAL_WRITE). */
		fd = memfd_create("vm-fork-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		int err = -errno;
		pr_err("guest RAM: cannot create %s: %s", path ? path : "memfd", strerror(errno));
		return err;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		pr_err("guest RAM: cannot size %s to %llu bytes: %s", path ? path : "memfd",
		       (unsigned long long)size, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

int guest_mem_create(struct guest_mem *mem, uint64_t size, const char *path)
{
	void *host;
	int fd;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (size < VM_MIN_MEM || size > VM_MAX_MEM || size % (2 * MiB)) {
		pr_err("guest RAM: %llu bytes is not a multiple of 2 MiB between 16 MiB and 1 TiB",
		       (unsigned long long)size);
		return -EINVAL;
	}
	fd = open_backing(size, path);
	if (fd < 0)
		return fd;
	/* MAP_NORESERVE: RAM is committed page by page as the guest touches it. */
	host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (host == MAP_FAILED) {
		int err = -errno;
		pr_err("guest RAM: mmap of %llu bytes: %s", (unsigned long long)size, strerror(errno));
		close(fd);
		return err;
	}
	mem->fd = fd;
	mem->is_memfd = path == NULL;
	mem->size = size;
	mem->host = host;
	mem->nregions = guest_mem_layout(size, mem->regions);
	return 0;
}

int guest_mem_register(const struct guest_mem *mem, int vm_fd)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct mem_region *r = &mem->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = r->slot,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem->host + r->file_off),
			.flags = mem->slot_flags,
		};
		int ret = kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot);

		if (ret < 0)
			return ret;
	}
	return 0;
}

int guest_mem_map_host(int vm_fd, uint32_t slot, uint64_t gpa, void *host, uint64_t size,
		       bool read_only)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
		.flags = read_only ? KVM_MEM_READONLY : 0,
	};

	if ((gpa | size | r.userspace_addr) % PAGE_SIZE || slot < GUEST_MEM_MAX_REGIONS)
		return -EINVAL;
	return kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

void guest_mem_destroy(struct guest_mem *mem)
{
	free(mem->host_dirty);
	if (mem->host)
		munmap(mem->host, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

void *gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct mem_region *r = &mem->regions[i];

		/* Written so that no sum can overflow: gpa >= r->gpa first, then sizes. */
		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return mem->host + r->file_off + (gpa - r->gpa);
	}
	return NULL;
}

int guest_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = gpa_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	if (mem->host_dirty && len) {
		uint64_t first = ((uint8_t *)dst - mem->host) / PAGE_SIZE;
		uint64_t last = ((uint8_t *)dst - mem->host + len - 1) / PAGE_SIZE;

		for (uint64_t p = first; p <= last; p++)
			mem->host_dirty[p / 64] |= 1ULL << (p % 64);
	}
	return 0;
}

int guest_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = gpa_ptr(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].size;
}
