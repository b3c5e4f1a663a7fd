/*
 * The CMOS at ports 0x70 (index; bit 7 masks NMI, ignored) and 0x71 (data):
 * 128 bytes of NVRAM, of which the RTC's time registers read the host's
 * clock (UTC, BCD, 24-hour) and never show an update in progress, so
 * firmware reading the time never waits. The memory size and CPU count are
 * where SeaBIOS and other PC firmware look (cmos_set_machine()). Optional, on
 * with --firmware: off, the ports read 0xff. Its state is the NVRAM and the index.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bus.h"
#include "devices/cmos.h"

enum {
	RTC_SECONDS = 0x00, RTC_MINUTES = 0x02, RTC_HOURS = 0x04, RTC_WEEKDAY = 0x06,
	RTC_DAY = 0x07, RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_STATUS_A = 0x0a,
	RTC_STATUS_B = 0x0b, RTC_STATUS_C = 0x0c, RTC_STATUS_D = 0x0d, RTC_CENTURY = 0x32,
};
#define STATUS_B_24H   0x02
#define STATUS_D_VALID 0x80

struct cmos_state {
	uint8_t nvram[CMOS_SIZE];
	uint8_t index;
};

struct cmos {
	pthread_mutex_t lock;
	bool on;
	struct cmos_state st;
};

static uint8_t bcd(int v)
{
	return (uint8_t)((v / 10) << 4 | v % 10);
}

static uint8_t rtc_read(unsigned reg)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (reg) {
	case RTC_SECONDS: return bcd(tm.tm_sec);
	case RTC_MINUTES: return bcd(tm.tm_min);
	case RTC_HOURS: return bcd(tm.tm_hour);
	case RTC_WEEKDAY: return bcd(tm.tm_wday + 1);
	case RTC_DAY: return bcd(tm.tm_mday);
	case RTC_MONTH: return bcd(tm.tm_mon + 1);
	case RTC_YEAR: return bcd(tm.tm_year % 100);
	default: return bcd(19 + tm.tm_year / 100); /* RTC_CENTURY */
	}
}

static uint8_t cmos_read(struct cmos *c)
{
	unsigned i = c->st.index;

	if (i <= RTC_YEAR && !(i & 1 && i < RTC_WEEKDAY))
		return rtc_read(i);
	if (i == RTC_CENTURY)
		return rtc_read(i);
	if (i == RTC_STATUS_A)
		return 0x26; /* 32.768 kHz, 1024 Hz; never update-in-progress */
	if (i == RTC_STATUS_C)
		return 0;
	return c->st.nvram[i];
}

static void cmos_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct cmos *c = dev;

	pthread_mutex_lock(&c->lock);
	if (!c->on) {
		if (!is_write)
			memset(data, 0xff, len);
	} else if (offset == 0) {
		if (is_write)
			c->st.index = data[0] & 0x7f;
		else
			memset(data, 0xff, len); /* the index port is write-only */
	} else if (is_write) {
		/* The time and status registers are the host's; the rest is NVRAM. */
		if (c->st.index > RTC_STATUS_D && c->st.index != RTC_CENTURY)
			c->st.nvram[c->st.index] = data[0];
	} else {
		memset(data, 0, len);
		data[0] = cmos_read(c);
	}
	pthread_mutex_unlock(&c->lock);
}

static const struct bus_dev_ops cmos_ops = { .name = "cmos", .io = cmos_io };

/* A 16-bit count, low byte at reg, capped where it does not fit. */
static void put16(struct cmos *c, unsigned reg, uint64_t v)
{
	v = v > 0xffff ? 0xffff : v;
	c->st.nvram[reg] = (uint8_t)v;
	c->st.nvram[reg + 1] = (uint8_t)(v >> 8);
}

void cmos_set_machine(void *dev, uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned ncpus)
{
	struct cmos *c = dev;
	uint64_t above_1m = ram_below_4g > (1 << 20) ? ram_below_4g - (1 << 20) : 0;
	uint64_t above_16m = ram_below_4g > (16 << 20) ? ram_below_4g - (16 << 20) : 0;
	uint64_t high = ram_above_4g >> 16;

	pthread_mutex_lock(&c->lock);
	put16(c, 0x15, 640);              /* base memory, KiB */
	put16(c, 0x17, above_1m >> 10);   /* extended memory, KiB */
	put16(c, 0x30, above_1m >> 10);
	put16(c, 0x34, above_16m >> 16);  /* above 16 MiB, 64 KiB units */
	c->st.nvram[0x5b] = (uint8_t)high; /* above 4 GiB, 64 KiB units, 24 bits */
	c->st.nvram[0x5c] = (uint8_t)(high >> 8);
	c->st.nvram[0x5d] = (uint8_t)(high >> 16);
	c->st.nvram[0x5f] = (uint8_t)(ncpus - 1);
	c->st.nvram[RTC_STATUS_B] = STATUS_B_24H;
	c->st.nvram[RTC_STATUS_D] = STATUS_D_VALID;
	pthread_mutex_unlock(&c->lock);
}

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct cmos *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->st.nvram[RTC_STATUS_B] = STATUS_B_24H;
	c->st.nvram[RTC_STATUS_D] = STATUS_D_VALID;
	ret = bus_register(bus, BUS_PIO, CMOS_PORT_INDEX, 2, &cmos_ops, c);
	if (ret < 0) {
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

static int dev_configure(void *dev, const char *arg)
{
	((struct cmos *)dev)->on = true;
	return 0;
}

static void dev_destroy(void *dev)
{
	pthread_mutex_destroy(&((struct cmos *)dev)->lock);
	free(dev);
}

static void dev_save(void *dev, void *state)
{
	struct cmos *c = dev;

	pthread_mutex_lock(&c->lock);
	memcpy(state, &c->st, sizeof(c->st));
	pthread_mutex_unlock(&c->lock);
}

static int dev_check(const void *state)
{
	return ((const struct cmos_state *)state)->index < CMOS_SIZE ? 0 : -EINVAL;
}

static int dev_restore(void *dev, const void *state)
{
	struct cmos *c = dev;

	if (dev_check(state) < 0)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	memcpy(&c->st, state, sizeof(c->st));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

const struct device_type cmos_device = {
	.name = "cmos@70", .option = "cmos", .state_size = sizeof(struct cmos_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore,
};
