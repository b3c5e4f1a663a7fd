/*
 * Guest RAM: one shared file (a memfd, or a file the user names) mapped
 * MAP_SHARED in one contiguous host range, and registered with KVM as up to
 * two memory slots: RAM below the 32-bit MMIO hole at GPA 0, the rest at 4 GiB.
 * gpa_ptr() is the only way code turns a guest address into a host pointer.
 */
#ifndef CORE_MEMORY_H
#define CORE_MEMORY_H

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
	int fd;             /* backing file (or the frozen base of a clone), owned; -1 in a bare shell */
	bool is_memfd;      /* fd is a memfd that can be sealed */
	bool frozen;        /* fd is a frozen base: never written again, mapped MAP_PRIVATE */
	bool sealed;        /* ... and the kernel enforces it (F_SEAL_WRITE on a memfd) */
	uint64_t size;      /* total RAM in bytes */
	uint8_t *host;      /* host mapping of the whole file */
	uint32_t slot_flags; /* KVM memory slot flags: KVM_MEM_LOG_DIRTY_PAGES while logging */
	uint64_t *host_dirty; /* while logging: a bit per page guest_write() wrote, then scratch */
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

/* KVM memory slots outside RAM, after its regions' (slots 0 and 1). */
#define MEM_SLOT_FUZZ_MAP   2
#define MEM_SLOT_FUZZ_INPUT 3
#define MEM_SLOT_FIRMWARE   4
/*
 * Map host memory that the layer above owns (not RAM: no part of a fork,
 * snapshot or reset) at gpa as slot; size and host page-aligned; read_only:
 * the guest's writes exit instead. size 0 removes the slot.
 */
int guest_mem_map_host(int vm_fd, uint32_t slot, uint64_t gpa, void *host, uint64_t size,
		       bool read_only);

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

/*
 * Freeze the backing file as a base: remap this VM's own range MAP_PRIVATE
 * over it at the same address (KVM's memory slots stay valid) and seal a
 * memfd against writes, so the kernel enforces that clones' base never
 * changes. The VM must be paused. No-op when already frozen.
 */
int guest_mem_freeze(struct guest_mem *mem);
/*
 * The remap alone, while the VM may still run (KVM refaults through the new
 * mapping, which shows the same file). Seal later, once it is paused: a
 * running vCPU can hold page references that make F_SEAL_WRITE fail (EBUSY).
 */
int guest_mem_freeze_running(struct guest_mem *mem);
void guest_mem_seal(struct guest_mem *mem);

/* Reserve a host range for size bytes of RAM with no file behind it yet (a warm shell). */
int guest_mem_reserve(struct guest_mem *mem, uint64_t size);
/*
 * Map base's frozen file MAP_PRIVATE over mem's range (reserved, or mapped
 * before); mem takes its own reference on the file. Sizes must match.
 */
int guest_mem_map_base(struct guest_mem *mem, const struct guest_mem *base);
/*
 * The same ahead of time, for a warm shell, from a file that may still be
 * live (a running VM's RAM that its next fork will freeze). Correct because
 * a MAP_PRIVATE page not yet written shows the file's current contents, and
 * nothing writes a shell's RAM before a fork has frozen the file and loaded
 * the shell. mem->frozen stays false until guest_mem_adopt_base().
 */
int guest_mem_premap(struct guest_mem *mem, const struct guest_mem *file);
/* A premapped shell's file is now frozen: take it as the base. */
void guest_mem_adopt_base(struct guest_mem *mem);

/* Byte ranges (offsets into the RAM) a frozen VM has written since its base was frozen. */
struct mem_ranges {
	unsigned n, cap;
	struct { uint64_t off, len; } *r;
	uint64_t pages;
};
int guest_mem_private_ranges(const struct guest_mem *mem, struct mem_ranges *out);
/* Append [off, off+len), merged with the last range when they touch. */
int mem_ranges_add(struct mem_ranges *ranges, uint64_t off, uint64_t len);
void mem_ranges_free(struct mem_ranges *ranges);

/*
 * Dirty logging (core/memory_dirty.c): which pages were written since the
 * last look, by the guest (KVM's dirty log of the memory slots) or by the
 * VMM (guest_write() sets a bit of its own). Turning it on registers the
 * slots again with KVM_MEM_LOG_DIRTY_PAGES and starts with nothing dirty
 * (again, when it was on already); it stays on for the VM's life.
 */
int guest_mem_log_dirty(struct guest_mem *mem, int vm_fd);
/* The pages written since the last call (or since logging began) into out, emptied first. */
int guest_mem_take_dirty(struct guest_mem *mem, int vm_fd, struct mem_ranges *out);
/* Copy those ranges from src into dst (both map the same base). */
void guest_mem_copy_ranges(const struct guest_mem *src, struct guest_mem *dst,
			   const struct mem_ranges *ranges);

/* Bytes of the RAM file in memory (pages ever touched), by mincore(). */
uint64_t guest_mem_resident_bytes(const struct guest_mem *mem);

/* Highest guest-physical address + 1 that is RAM below 4 GiB. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
