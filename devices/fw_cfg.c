/*
 * fw_cfg's port and DMA interfaces (devices/fw_cfg.h). Items are filled by
 * the layer that boots firmware (vmm/boot_firmware.c) before the VM runs; the
 * guest only selects, reads and skips. Optional, on with --firmware: off, its
 * ports read 0xff. Its state is the selector, the offset reached and the DMA
 * address's high half.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/memory.h"
#include "devices/fw_cfg.h"

#define FW_CFG_ITEMS (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)

struct fw_cfg_item {
	uint8_t *data;
	uint32_t len;
};

struct fw_cfg_state {
	uint16_t selector;
	uint16_t reserved;
	uint32_t offset;
	uint32_t dma_high;      /* the last write to 0x514 */
	uint32_t reserved2;
};

/* The DMA descriptor, as the guest writes it (big-endian). */
struct fw_cfg_dma {
	uint32_t control, length;
	uint64_t address;
} __attribute__((packed));

/* A DMA zero-fill past an item goes to the guest in pieces this big. */
#define ZERO_CHUNK 4096

struct fw_cfg {
	const struct guest_mem *mem;
	pthread_mutex_t lock;
	bool on;
	struct fw_cfg_item items[FW_CFG_ITEMS];
	unsigned nfiles;
	struct fw_cfg_state st;
	uint64_t refused;
};

static int set_item(struct fw_cfg *f, unsigned key, const void *data, size_t len)
{
	uint8_t *copy = len ? malloc(len) : NULL;

	if (key >= FW_CFG_ITEMS || len > UINT32_MAX)
		return -EINVAL;
	if (len && !copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	free(f->items[key].data);
	f->items[key] = (struct fw_cfg_item){ copy, (uint32_t)len };
	return 0;
}

int fw_cfg_set(void *dev, uint16_t key, const void *data, size_t len)
{
	return key < FW_CFG_FILE_FIRST && key != FW_CFG_FILE_DIR ? set_item(dev, key, data, len)
								   : -EINVAL;
}

/* The directory: be32 count, then {be32 size, be16 select, u16 0, name[56]} per file. */
static int add_dir_entry(struct fw_cfg *f, const char *name, uint32_t len, uint16_t key)
{
	struct fw_cfg_item *dir = &f->items[FW_CFG_FILE_DIR];
	size_t size = 4 + (size_t)(f->nfiles + 1) * 64;
	uint8_t *p = realloc(dir->data, size), *e;
	uint32_t count = __builtin_bswap32(f->nfiles + 1), be_len = __builtin_bswap32(len);
	uint16_t be_key = __builtin_bswap16(key);

	if (!p)
		return -ENOMEM;
	e = p + 4 + (size_t)f->nfiles * 64;
	memset(e, 0, 64);
	memcpy(e, &be_len, 4);
	memcpy(e + 4, &be_key, 2);
	memcpy(e + 8, name, strlen(name));
	memcpy(p, &count, 4);
	dir->data = p;
	dir->len = (uint32_t)size;
	return 0;
}

int fw_cfg_add_file(void *dev, const char *name, const void *data, size_t len)
{
	struct fw_cfg *f = dev;
	uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + f->nfiles);
	int ret;

	if (f->nfiles == FW_CFG_MAX_FILES)
		return -ENOSPC;
	if (strlen(name) >= FW_CFG_NAME_MAX)
		return -ENAMETOOLONG;
	ret = set_item(f, key, data, len);
	if (!ret)
		ret = add_dir_entry(f, name, (uint32_t)len, key);
	if (!ret)
		f->nfiles++;
	return ret;
}

unsigned fw_cfg_files(void *dev)
{
	return ((struct fw_cfg *)dev)->nfiles;
}

uint64_t fw_cfg_refused(void *dev)
{
	return ((struct fw_cfg *)dev)->refused;
}

static void select_key(struct fw_cfg *f, uint16_t key)
{
	f->st.selector = key;
	f->st.offset = 0;
	if (key >= FW_CFG_ITEMS || !f->items[key].len)
		f->refused++;
}

static void select_item(struct fw_cfg *f, const uint8_t *data, uint32_t len)
{
	select_key(f, (uint16_t)(data[0] | (len > 1 ? data[1] << 8 : 0)));
}

/* Sequential bytes of the selected item; past its end (or none), zeros, counted once. */
static void read_data(struct fw_cfg *f, uint8_t *data, uint32_t len)
{
	const struct fw_cfg_item *it = f->st.selector < FW_CFG_ITEMS ? &f->items[f->st.selector]
								    : NULL;

	for (uint32_t i = 0; i < len; i++) {
		if (it && f->st.offset < it->len) {
			data[i] = it->data[f->st.offset++];
			continue;
		}
		data[i] = 0;
		if (it && it->len && f->st.offset++ == it->len)
			f->refused++;
	}
}

/* len bytes of the selected item from the current offset into guest RAM at gpa, zeros past its end. */
static int dma_read(struct fw_cfg *f, uint64_t gpa, uint32_t len)
{
	static const uint8_t zeros[ZERO_CHUNK];
	const struct fw_cfg_item *it = f->st.selector < FW_CFG_ITEMS ? &f->items[f->st.selector]
								    : NULL;
	uint32_t have = it && f->st.offset < it->len ? it->len - f->st.offset : 0;
	uint32_t n = have < len ? have : len;
	int ret = n ? guest_write(f->mem, gpa, it->data + f->st.offset, n) : 0;

	if (ret < 0)
		return ret;
	f->st.offset += n;
	if (n < len)
		f->refused++;
	for (uint32_t done = n; done < len && !ret; done += ZERO_CHUNK) {
		uint32_t piece = len - done < ZERO_CHUNK ? len - done : ZERO_CHUNK;

		ret = guest_write(f->mem, gpa + done, zeros, piece);
	}
	return ret;
}

/* One descriptor at gpa: select, then read, skip or (refused) write; its control says how it ended. */
static void dma_transfer(struct fw_cfg *f, uint64_t gpa)
{
	struct fw_cfg_dma d;
	uint32_t control, len, done = 0;
	int ret;

	if (guest_read(f->mem, gpa, &d, sizeof(d)) < 0) {
		f->refused++;
		return;
	}
	control = __builtin_bswap32(d.control);
	len = __builtin_bswap32(d.length);
	if (control & FW_CFG_DMA_SELECT)
		select_key(f, (uint16_t)(control >> 16));
	if (control & FW_CFG_DMA_READ)
		ret = dma_read(f, __builtin_bswap64(d.address), len);
	else if (control & FW_CFG_DMA_SKIP)
		ret = (f->st.offset += len, 0);
	else if (control & FW_CFG_DMA_WRITE)
		ret = -EPERM;
	else
		ret = 0;
	if (ret < 0) {
		f->refused++;
		done = __builtin_bswap32(FW_CFG_DMA_ERROR);
	}
	guest_write(f->mem, gpa, &done, sizeof(done));
}

/* 0x514: the address's high half; 0x518: its low half, which starts the transfer. */
static void dma_io(struct fw_cfg *f, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t be;

	if (!is_write || len != 4 || (offset != 4 && offset != 8)) {
		if (!is_write)
			memset(data, 0, len);
		f->refused++;
		return;
	}
	memcpy(&be, data, 4);
	if (offset == 4) {
		f->st.dma_high = __builtin_bswap32(be);
		return;
	}
	dma_transfer(f, (uint64_t)f->st.dma_high << 32 | __builtin_bswap32(be));
	f->st.dma_high = 0;
}

static void fw_cfg_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fw_cfg *f = dev;

	pthread_mutex_lock(&f->lock);
	if (!f->on) {
		if (!is_write)
			memset(data, 0xff, len);
	} else if (offset == 0 && is_write) {
		select_item(f, data, len);
	} else if (offset == 1 && !is_write) {
		read_data(f, data, len);
	} else if (offset >= 4) {
		dma_io(f, offset, data, len, is_write);
	} else {
		if (!is_write)
			memset(data, 0, len);
		f->refused++;
	}
	pthread_mutex_unlock(&f->lock);
}

static const struct bus_dev_ops fw_cfg_ops = { .name = "fw_cfg", .io = fw_cfg_io };

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	static const char signature[4] = { 'Q', 'E', 'M', 'U' };
	static const uint32_t id = 3; /* the port interface and DMA */
	struct fw_cfg *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->mem = host->mem;
	pthread_mutex_init(&f->lock, NULL);
	ret = set_item(f, FW_CFG_SIGNATURE, signature, sizeof(signature));
	if (!ret)
		ret = set_item(f, FW_CFG_ID, &id, sizeof(id));
	if (!ret)
		ret = set_item(f, FW_CFG_FILE_DIR, (const uint32_t[]){ 0 }, 4);
	if (!ret)
		ret = bus_register(bus, BUS_PIO, FW_CFG_PORT_SEL, 12, &fw_cfg_ops, f);
	if (ret < 0) {
		for (unsigned i = 0; i < FW_CFG_ITEMS; i++)
			free(f->items[i].data);
		free(f);
		return ret;
	}
	*out = f;
	return 0;
}

static int dev_configure(void *dev, const char *arg)
{
	((struct fw_cfg *)dev)->on = true;
	return 0;
}

static void dev_destroy(void *dev)
{
	struct fw_cfg *f = dev;

	for (unsigned i = 0; i < FW_CFG_ITEMS; i++)
		free(f->items[i].data);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void dev_save(void *dev, void *state)
{
	struct fw_cfg *f = dev;

	pthread_mutex_lock(&f->lock);
	memcpy(state, &f->st, sizeof(f->st));
	pthread_mutex_unlock(&f->lock);
}

static int dev_check(const void *state)
{
	const struct fw_cfg_state *st = state;

	return st->reserved || st->reserved2 ? -EINVAL : 0;
}

static int dev_restore(void *dev, const void *state)
{
	struct fw_cfg *f = dev;

	if (dev_check(state) < 0)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	memcpy(&f->st, state, sizeof(f->st));
	pthread_mutex_unlock(&f->lock);
	return 0;
}

const struct device_type fw_cfg_device = {
	.name = "fw_cfg@510", .option = "fw_cfg", .state_size = sizeof(struct fw_cfg_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore,
};
