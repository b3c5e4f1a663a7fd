/* The i8042 bits Linux uses: its status port, and the reset pulse (0xfe to port 0x64). */
#ifndef DEVICES_I8042_H
#define DEVICES_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/device.h"

struct i8042 {
	pthread_mutex_t lock;
	uint8_t cmd_byte;        /* controller command byte */
	uint8_t pending_cmd;     /* command waiting for its data byte, 0 if none */
	uint8_t out_buf;         /* byte the guest reads from port 0x60 */
	int out_full;
	void (*on_reset)(void *opaque); /* the guest asked for a CPU reset */
	void *opaque;
};

/* What a fork or snapshot carries. */
struct i8042_state {
	uint8_t cmd_byte, pending_cmd, out_buf, out_full;
};

void i8042_save(struct i8042 *kbd, struct i8042_state *st);
void i8042_restore(struct i8042 *kbd, const struct i8042_state *st);

void i8042_init(struct i8042 *kbd, void (*on_reset)(void *opaque), void *opaque);
void i8042_destroy(struct i8042 *kbd);

/* Register both as one device: ops dispatch on the port, so claim port 0x60 and 0x64 separately. */
extern const struct bus_dev_ops i8042_data_ops; /* port 0x60, len 1 */
extern const struct bus_dev_ops i8042_cmd_ops;  /* port 0x64, len 1 */
/* The controller in the device table (core/device.h). */
extern const struct device_type i8042_device;

#endif
