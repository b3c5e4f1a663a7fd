/*
 * Which pages of guest RAM were written since the last look: what
 * reset-in-place copies back. The guest's writes come from KVM's dirty log
 * (KVM write-protects every page of a logged slot and notes the first write
 * to each after each look); the VMM's own writes, which KVM does not see,
 * from the bit guest_write() sets, which is why nothing else writes RAM.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "core/kvm.h"
#include "core/layout.h"
#include "core/memory.h"

static uint64_t bitmap_words(const struct guest_mem *mem)
{
	return (mem->size / PAGE_SIZE + 63) / 64;
}

int guest_mem_log_dirty(struct guest_mem *mem, int vm_fd)
{
	struct mem_ranges discard = { 0 };
	int ret;

	if (!mem->host_dirty) {
		/* The VMM's bits, then room for KVM's, so a look allocates nothing. */
		mem->host_dirty = calloc(2 * bitmap_words(mem), sizeof(uint64_t));
		if (!mem->host_dirty)
			return -ENOMEM;
	}
	mem->slot_flags = KVM_MEM_LOG_DIRTY_PAGES;
	ret = guest_mem_register(mem, vm_fd);
	if (ret < 0) {
		/* Back to unlogged slots, as before. */
		mem->slot_flags = 0;
		free(mem->host_dirty);
		mem->host_dirty = NULL;
		guest_mem_register(mem, vm_fd);
		return ret;
	}
	/* From now on: what KVM logged before (a mark made earlier) does not count. */
	ret = guest_mem_take_dirty(mem, vm_fd, &discard);
	mem_ranges_free(&discard);
	return ret;
}

/* Runs of set bits in words [0, n) of a page bitmap (bit 0: the RAM's first page). */
static int add_runs(struct mem_ranges *out, const uint64_t *bits, uint64_t n)
{
	int ret = 0;

	for (uint64_t w = 0; w < n && !ret; w++) {
		uint64_t word = bits[w];

		while (word && !ret) {
			unsigned bit = (unsigned)__builtin_ctzll(word);
			uint64_t from_bit = word >> bit;
			unsigned len = from_bit == ~0ULL ? 64 : (unsigned)__builtin_ctzll(~from_bit);

			ret = mem_ranges_add(out, (w * 64 + bit) * PAGE_SIZE, len * PAGE_SIZE);
			word = len + bit >= 64 ? 0 : word & ~(((1ULL << len) - 1) << bit);
		}
	}
	return ret;
}

int guest_mem_take_dirty(struct guest_mem *mem, int vm_fd, struct mem_ranges *out)
{
	uint64_t words = bitmap_words(mem);
	uint64_t *bits;
	int ret = 0;

	out->n = 0;
	out->pages = 0;
	if (!mem->host_dirty)
		return -EINVAL;
	bits = mem->host_dirty + words;
	/* Regions are 2 MiB multiples at 2 MiB file offsets: each starts at a whole word. */
	for (unsigned i = 0; i < mem->nregions && !ret; i++) {
		const struct mem_region *r = &mem->regions[i];
		struct kvm_dirty_log log = {
			.slot = r->slot,
			.dirty_bitmap = bits + r->file_off / PAGE_SIZE / 64,
		};

		ret = kvm_ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log);
	}
	for (uint64_t w = 0; w < words; w++) {
		bits[w] |= mem->host_dirty[w];
		mem->host_dirty[w] = 0;
	}
	return ret ? ret : add_runs(out, bits, words);
}
