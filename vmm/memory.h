/*
 * Guest RAM: one shared file (a memfd, or a file the user names) mapped
 * MAP_SHARED in one contiguous host range, and registered with KVM as up to
 * two memory slots: RAM below the 32-bit MMIO hole at GPA 0, the rest at 4 GiB.
 * gpa_ptr() is the only way code turns a guest address into a host pointer.
 */
#ifndef VMM_MEMORY_H
#define VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;       /* first guest-physical address */
	uint64_t size;      /* bytes */
	uint64_t file_off;  /* offset in the backing file, also offset from guest_mem.host */
	uint32_t slot;      /* KVM memory slot number */
};

struct guest_mem {
	int fd;             /* backing file, owned */
	uint64_t size;      /* total RAM in bytes */
	uint8_t *host;      /* host mapping of the whole file */
	unsigned nregions;
	struct mem_region regions[GUEST_MEM_MAX_REGIONS];
};

/*
 * Create the backing file (path NULL: an anonymous memfd; else a file that is
 * created or truncated to size) and map it. size must be a multiple of 2 MiB
 * between VM_MIN_MEM and VM_MAX_MEM. Returns 0 or -errno.
 */
int guest_mem_create(struct guest_mem *mem, uint64_t size, const char *path);
/* Register the regions as KVM memory slots of vm_fd. */
int guest_mem_register(const struct guest_mem *mem, int vm_fd);
void guest_mem_destroy(struct guest_mem *mem);

/* Split size bytes of RAM into regions around the MMIO hole; returns the count. */
unsigned guest_mem_layout(uint64_t size, struct mem_region regions[GUEST_MEM_MAX_REGIONS]);

/*
 * Host pointer for [gpa, gpa+len) when the whole range is RAM inside one
 * region, else NULL. Never trusts its arguments: overflow is checked.
 */
void *gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy helpers on top of gpa_ptr; return 0 or -EFAULT. */
int guest_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);

/* Highest guest-physical address + 1 that is RAM below 4 GiB. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
