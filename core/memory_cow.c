/*
 * Guest RAM as a frozen base plus private copies: what forks stand on.
 * A frozen file is never written again; every VM that uses it maps it
 * MAP_PRIVATE, so its own writes become anonymous pages of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/layout.h"
#include "core/log.h"
#include "core/memory.h"

#define PROT_RW (PROT_READ | PROT_WRITE)

static int map_private_at(void *addr, uint64_t size, int fd)
{
	void *p = mmap(addr, size, PROT_RW, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);

	if (p == MAP_FAILED) {
		int err = -errno;

		pr_err("guest RAM: mapping the frozen base: %s", strerror(errno));
		return err;
	}
	return 0;
}

int guest_mem_freeze_running(struct guest_mem *mem)
{
	int ret;

	if (mem->frozen)
		return 0;
	ret = map_private_at(mem->host, mem->size, mem->fd);
	if (!ret)
		mem->frozen = true;
	return ret;
}

void guest_mem_seal(struct guest_mem *mem)
{
	if (!mem->is_memfd || mem->sealed)
		return;
	/* The shared writable mapping is gone; a seal also waits out pinned pages (EBUSY). */
	if (fcntl(mem->fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) < 0)
		pr_warn("guest RAM: cannot seal the frozen base: %s", strerror(errno));
	else
		mem->sealed = true;
}

int guest_mem_freeze(struct guest_mem *mem)
{
	int ret = guest_mem_freeze_running(mem);

	if (!ret)
		guest_mem_seal(mem);
	return ret;
}

int guest_mem_reserve(struct guest_mem *mem, uint64_t size)
{
	void *host;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (size < VM_MIN_MEM || size > VM_MAX_MEM || size % (2 * MiB))
		return -EINVAL;
	host = mmap(NULL, size, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (host == MAP_FAILED)
		return -errno;
	mem->host = host;
	mem->size = size;
	mem->nregions = guest_mem_layout(size, mem->regions);
	return 0;
}

int guest_mem_premap(struct guest_mem *mem, const struct guest_mem *file)
{
	int fd, ret;

	if (file->size != mem->size || file->fd < 0)
		return -EINVAL;
	fd = fcntl(file->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = map_private_at(mem->host, mem->size, fd);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (mem->fd >= 0)
		close(mem->fd);
	mem->fd = fd;
	mem->is_memfd = file->is_memfd;
	mem->frozen = false;
	return 0;
}

void guest_mem_adopt_base(struct guest_mem *mem)
{
	mem->frozen = true;
}

int guest_mem_map_base(struct guest_mem *mem, const struct guest_mem *base)
{
	int ret;

	if (!base->frozen)
		return -EINVAL;
	ret = guest_mem_premap(mem, base);
	if (!ret)
		guest_mem_adopt_base(mem);
	return ret;
}

int mem_ranges_add(struct mem_ranges *rs, uint64_t off, uint64_t len)
{
	if (rs->n && rs->r[rs->n - 1].off + rs->r[rs->n - 1].len == off) {
		rs->r[rs->n - 1].len += len;
	} else {
		if (rs->n == rs->cap) {
			unsigned cap = rs->cap ? rs->cap * 2 : 64;
			void *r = realloc(rs->r, cap * sizeof(rs->r[0]));

			if (!r)
				return -ENOMEM;
			rs->r = r;
			rs->cap = cap;
		}
		rs->r[rs->n].off = off;
		rs->r[rs->n].len = len;
		rs->n++;
	}
	rs->pages += len / PAGE_SIZE;
	return 0;
}

void mem_ranges_free(struct mem_ranges *ranges)
{
	free(ranges->r);
	memset(ranges, 0, sizeof(*ranges));
}

/* PAGEMAP_SCAN (Linux 6.7): anonymous pages found by walking page tables, holes skipped. */
#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_FILE    (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#endif

static int scan_ioctl(int pagemap, const struct guest_mem *mem, struct mem_ranges *out)
{
	struct page_region vec[256];
	uint64_t base = (uint64_t)(uintptr_t)mem->host, end = base + mem->size;
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .vec = (uint64_t)(uintptr_t)vec, .vec_len = 256,
		.category_inverted = PAGE_IS_FILE, .category_mask = PAGE_IS_FILE,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};

	for (uint64_t start = base; start < end; start = arg.walk_end) {
		int n;

		arg.start = start;
		arg.end = end;
		n = ioctl(pagemap, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++)
			if (mem_ranges_add(out, vec[i].start - base, vec[i].end - vec[i].start) < 0)
				return -ENOMEM;
	}
	return 0;
}

/* Older kernels: read the pagemap; private anonymous = present or swapped, not file/shared. */
static int scan_read(int pagemap, const struct guest_mem *mem, struct mem_ranges *out)
{
	enum { CHUNK = 4096 };
	static const uint64_t present = 1ULL << 63, swapped = 1ULL << 62, file = 1ULL << 61;
	uint64_t *entries = malloc(CHUNK * sizeof(*entries)), npages = mem->size / PAGE_SIZE;
	uint64_t first = (uint64_t)(uintptr_t)mem->host / PAGE_SIZE;
	int ret = 0;

	if (!entries)
		return -ENOMEM;
	for (uint64_t done = 0; done < npages && !ret; done += CHUNK) {
		uint64_t n = npages - done < CHUNK ? npages - done : CHUNK;
		ssize_t got = pread(pagemap, entries, n * 8, (off_t)((first + done) * 8));

		if (got != (ssize_t)(n * 8)) {
			ret = got < 0 ? -errno : -EIO;
			break;
		}
		for (uint64_t i = 0; i < n && !ret; i++)
			if ((entries[i] & (present | swapped)) && !(entries[i] & file))
				ret = mem_ranges_add(out, (done + i) * PAGE_SIZE, PAGE_SIZE);
	}
	free(entries);
	return ret;
}

int guest_mem_private_ranges(const struct guest_mem *mem, struct mem_ranges *out)
{
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), ret;

	memset(out, 0, sizeof(*out));
	if (pagemap < 0)
		return -errno;
	ret = scan_ioctl(pagemap, mem, out);
	if (ret == -ENOTTY || ret == -EINVAL) {
		mem_ranges_free(out);
		ret = scan_read(pagemap, mem, out);
	}
	close(pagemap);
	if (ret < 0)
		mem_ranges_free(out);
	return ret;
}

void guest_mem_copy_ranges(const struct guest_mem *src, struct guest_mem *dst,
			   const struct mem_ranges *ranges)
{
	for (unsigned i = 0; i < ranges->n; i++)
		memcpy(dst->host + ranges->r[i].off, src->host + ranges->r[i].off, ranges->r[i].len);
}

uint64_t guest_mem_resident_bytes(const struct guest_mem *mem)
{
	enum { CHUNK = 1 << 20 }; /* pages per mincore() call */
	unsigned char *vec = malloc(CHUNK);
	uint64_t pages = mem->size / PAGE_SIZE, resident = 0;

	if (!vec)
		return 0;
	for (uint64_t done = 0; done < pages; done += CHUNK) {
		uint64_t n = pages - done < CHUNK ? pages - done : CHUNK;

		if (mincore(mem->host + done * PAGE_SIZE, n * PAGE_SIZE, vec) < 0)
			break;
		for (uint64_t i = 0; i < n; i++)
			resident += vec[i] & 1;
	}
	free(vec);
	return resident * PAGE_SIZE;
}
