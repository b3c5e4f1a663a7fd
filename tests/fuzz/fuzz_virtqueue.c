/*
 * libFuzzer target for the split virtqueue (devices/virtqueue.c) and the
 * virtio-mmio transport (devices/virtio_mmio.c) with virtio-rng behind it:
 * the input is the guest. Guest RAM is two small heap buffers' worth (at 0
 * and at 4 GiB, as RAM sits around the MMIO hole), so AddressSanitizer sees
 * any access past them that the bounds checks let through.
 *
 * Input: a 16-byte header, then
 * - ring mode (header[0] even): the queue's state from the header (size,
 *   ring addresses near, across and beyond RAM's edges, indexes) and RAM's
 *   contents: the rings and descriptors. Chains are popped, copied from and
 *   to, and pushed until the ring is empty or broken; every chain taken
 *   must obey the rules, every copy stop at its chain.
 * - transport mode (odd): header[12] register accesses of 7 bytes each
 *   (flags, offset, value) through the bus, then RAM's contents. Every state
 *   the transport reaches must pass its own check() and carry over intact
 *   into a second instance.
 * Built and run by tests/fuzz/run-fuzz.sh; LLVMFuzzerInitialize writes seeds:
 * a ring with good and bad chains, and a driver's whole setup and notify.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_rng.h"
#include "devices/virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define REGION   (32 * 1024)
#define HEADER   16
#define OP_BYTES 7

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "fuzz_virtqueue: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                            \
		}                                                                           \
	} while (0)

struct fuzz {
	struct guest_mem mem;
	uint8_t scratch[64 * 1024];
	struct vq_chain chain;
};

static struct fuzz *fz;

static void make_mem(struct guest_mem *mem)
{
	*mem = (struct guest_mem){ .fd = -1, .size = 2 * REGION, .nregions = 2 };
	mem->host = malloc(2 * REGION);
	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = REGION, .file_off = 0, .slot = 0 };
	mem->regions[1] = (struct mem_region){ .gpa = LAYOUT_HIGH_RAM, .size = REGION,
					       .file_off = REGION, .slot = 1 };
}

static uint16_t u16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* An address of class cls (2 bits) at off: low RAM, high RAM, wrapping past 2^64, the MMIO hole. */
static uint64_t address(unsigned cls, uint16_t off)
{
	switch (cls & 3) {
	case 0: return off;
	case 1: return LAYOUT_HIGH_RAM + off;
	case 2: return 0 - (uint64_t)off;
	default: return LAYOUT_MMIO_HOLE - REGION + off;
	}
}

static void load_ram(const uint8_t *data, size_t size)
{
	size_t n = size < 2 * REGION ? size : 2 * REGION;

	memcpy(fz->mem.host, data, n);
	memset(fz->mem.host + n, 0, 2 * REGION - n);
}

/* What the rules promise of a chain vq_pop() gave. */
static void check_chain(const struct virtqueue *vq, const struct vq_chain *c)
{
	uint64_t readable = 0, writable = 0;

	CHECK(c->head < vq->st.size && c->nseg >= 1 && c->nseg <= vq->st.size);
	for (unsigned i = 0; i < c->nseg; i++) {
		const struct vq_seg *s = &c->seg[i];

		CHECK(s->len > 0 && gpa_ptr(vq->mem, s->gpa, s->len));
		CHECK(s->writable || !writable); /* nothing readable after the writable part began */
		*(s->writable ? &writable : &readable) += s->len;
	}
	CHECK(readable == c->readable && writable == c->writable);
	CHECK(readable + writable <= UINT32_MAX);
}

static uint64_t expected_copy(uint64_t part, uint64_t off, size_t len)
{
	return off >= part ? 0 : part - off < len ? part - off : len;
}

/* Copy from and to the chain at offsets the header picks: exactly what the chain holds. */
static uint32_t serve(struct virtqueue *vq, const struct vq_chain *c, const uint8_t *h)
{
	uint64_t off = h[13] % (c->readable + 2);
	size_t len = (size_t)(h[14] << 8 | h[15]);
	size_t got;

	CHECK(vq_read(vq, c, off, fz->scratch, len) == expected_copy(c->readable, off, len));
	off = h[15] % (c->writable + 2);
	got = vq_write(vq, c, off, fz->scratch, len);
	CHECK(got == expected_copy(c->writable, off, len));
	return (uint32_t)got;
}

static void ring_mode(const uint8_t *h, const uint8_t *ram, size_t ram_size)
{
	struct virtqueue vq = { .mem = &fz->mem };
	struct vq_state st = {
		.desc = address(h[7], u16_at(h + 1)), .avail = address(h[7] >> 2, u16_at(h + 3)),
		.used = address(h[7] >> 4, u16_at(h + 5)), .size = (uint16_t)(1u << (h[0] >> 1) % 9),
		.last_avail = u16_at(h + 8), .used_idx = u16_at(h + 10), .ready = 1,
	};

	CHECK(vq_check_state(&st) == 0);
	load_ram(ram, ram_size);
	vq_load(&vq, &st);
	/* Each pop takes an entry; at most size are offered at once, so this ends. */
	for (unsigned n = 0; n <= st.size; n++) {
		uint64_t bad = vq.stats.bad_chains;
		int got = vq_pop(&vq, &fz->chain);

		if (got == 0)
			break;
		if (got == -EIO) {
			CHECK(vq.st.broken && vq_pop(&vq, &fz->chain) == -EIO);
			break;
		}
		CHECK(got == 1 || (got == -EBADMSG && vq.stats.bad_chains == bad + 1));
		if (got == 1) {
			check_chain(&vq, &fz->chain);
			if (vq_push(&vq, fz->chain.head, serve(&vq, &fz->chain, h)) < 0)
				CHECK(vq.st.broken);
		}
		vq_wants_interrupt(&vq);
	}
}

static void check_irq(void *opaque, unsigned gsi, int level)
{
	CHECK(gsi == GSI_VIRTIO_BASE + VIRTIO_RNG_SLOT && (level == 0 || level == 1));
}

/* One register access: flags bit 0 writes, bits 1-2 the width (1, 2, 4, 8). */
static void access(struct bus *bus, const uint8_t *op)
{
	uint32_t len = 1u << (op[0] >> 1 & 3);
	uint64_t off = u16_at(op + 1) % VIRTIO_MMIO_SLOT_SIZE;
	uint8_t v[8] = { 0 };

	memcpy(v, op + 3, 4);
	if (off + len > VIRTIO_MMIO_SLOT_SIZE)
		off = VIRTIO_MMIO_SLOT_SIZE - len;
	CHECK(bus_access(bus, BUS_MMIO, LAYOUT_VIRTIO_MMIO + off, v, len, op[0] & 1));
}

/* What the transport reached must be a state check() accepts, and load into another as it was. */
static void check_carried(void *dev, const struct device_host *host)
{
	struct virtio_rng_state st, again;
	struct bus bus2;
	void *second;

	virtio_rng_device.save(dev, &st);
	CHECK(virtio_rng_device.check(&st) == 0);
	bus_init(&bus2);
	CHECK(virtio_rng_device.create(&second, &bus2, host) == 0);
	CHECK(virtio_rng_device.restore(second, &st) == 0);
	virtio_rng_device.save(second, &again);
	CHECK(memcmp(&st, &again, sizeof(st)) == 0);
	virtio_rng_device.destroy(second);
}

static void transport_mode(const uint8_t *h, const uint8_t *rest, size_t size)
{
	const struct device_host host = { .set_irq = check_irq, .mem = &fz->mem };
	size_t nops = h[12], ops_bytes;
	struct bus bus;
	void *dev;

	if (nops * OP_BYTES > size)
		nops = size / OP_BYTES;
	ops_bytes = nops * OP_BYTES;
	load_ram(rest + ops_bytes, size - ops_bytes);
	bus_init(&bus);
	CHECK(virtio_rng_device.create(&dev, &bus, &host) == 0);
	CHECK(virtio_rng_device.configure(dev, "") == 0);
	for (size_t i = 0; i < nops; i++)
		access(&bus, rest + i * OP_BYTES);
	check_carried(dev, &host);
	virtio_rng_device.destroy(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HEADER)
		return 0;
	if (data[0] & 1)
		transport_mode(data, data + HEADER, size - HEADER);
	else
		ring_mode(data, data + HEADER, size - HEADER);
	return 0;
}

/* ---- Seeds ---- */

struct seed {
	uint8_t bytes[HEADER + 64 * OP_BYTES + 0x3000];
	size_t len;
};

static void put(struct seed *s, size_t at, const void *p, size_t n)
{
	memcpy(s->bytes + at, p, n);
	if (at + n > s->len)
		s->len = at + n;
}

static void put_desc(struct seed *s, size_t ram, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d = { addr, len, flags, next };

	put(s, ram + 0x1000 + 16 * i, &d, sizeof(d));
}

/* Rings in RAM at 0x1000 (descriptors), 0x2000 (avail), 0x2800 (used): four chains offered. */
static void put_rings(struct seed *s, size_t ram)
{
	uint16_t avail[6] = { 0, 4, 0, 2, 5, 7 };

	put_desc(s, ram, 0, 0x100, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(s, ram, 1, 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
	put_desc(s, ram, 2, 0x300, 32, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	put_desc(s, ram, 3, 0x400, 32, VIRTQ_DESC_F_WRITE, 0);
	put_desc(s, ram, 5, 0x500, 8, VIRTQ_DESC_F_NEXT, 5); /* a loop */
	put_desc(s, ram, 7, LAYOUT_HIGH_RAM + 0x100, 128, VIRTQ_DESC_F_WRITE, 0);
	put(s, ram + 0x2000, avail, sizeof(avail));
}

static void ring_seed(struct seed *s)
{
	uint8_t h[HEADER] = { 3 << 1, 0x00, 0x10, 0x00, 0x20, 0x00, 0x28, 0, 0, 0, 0, 0, 0, 5, 0, 40 };

	put(s, 0, h, HEADER);
	put_rings(s, HEADER);
}

static void put_op(struct seed *s, unsigned *n, uint16_t reg, uint32_t v)
{
	uint8_t op[OP_BYTES] = { 1 | 2 << 1, (uint8_t)reg, (uint8_t)(reg >> 8) };

	memcpy(op + 3, &v, 4);
	put(s, HEADER + OP_BYTES * (*n)++, op, OP_BYTES);
}

/* A driver's setup of queue 0 (size 8) over put_rings()'s rings, and a notify. */
static void transport_seed(struct seed *s)
{
	static const uint32_t ops[][2] = {
		{ 0x070, 0 }, { 0x070, 3 }, { 0x024, 1 }, { 0x020, 1 }, { 0x070, 11 }, { 0x030, 0 },
		{ 0x038, 8 }, { 0x080, 0x1000 }, { 0x090, 0x2000 }, { 0x0a0, 0x2800 }, { 0x044, 1 },
		{ 0x070, 15 }, { 0x050, 0 }, { 0x064, 1 },
	};
	unsigned n = 0;

	s->bytes[0] = 1;
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		put_op(s, &n, (uint16_t)ops[i][0], ops[i][1]);
	s->bytes[12] = (uint8_t)n;
	put_rings(s, HEADER + OP_BYTES * n);
}

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	f = fopen(path, "wb");
	if (f) {
		fwrite(s->bytes, 1, s->len, f);
		fclose(f);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("VMFORK_FUZZ_SEEDS");
	static struct seed s;

	fz = calloc(1, sizeof(*fz));
	make_mem(&fz->mem);
	if (dir) {
		memset(&s, 0, sizeof(s));
		ring_seed(&s);
		write_seed(dir, "ring", &s);
		memset(&s, 0, sizeof(s));
		transport_seed(&s);
		write_seed(dir, "transport", &s);
	}
	(void)argc;
	(void)argv;
	return 0;
}
