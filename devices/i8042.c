/*
 * The parts of the i8042 keyboard controller a guest needs without a
 * keyboard: the status port, the command byte, the self test, and the two
 * ways to reset the CPU (command 0xfe, or writing the output port with bit 0
 * clear). Keyboard and mouse data are not modelled.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/layout.h"
#include "devices/i8042.h"

#define STATUS_OBF     0x01 /* output buffer full */
#define STATUS_SYS     0x04 /* system flag, mirrors command byte bit 2 */
#define STATUS_UNLOCK  0x10 /* keyboard not inhibited */

#define CTR_SYS        0x04
#define CTR_KBD_OFF    0x10
#define CTR_AUX_OFF    0x20
#define CTR_XLATE      0x40

#define CMD_READ_CTR   0x20
#define CMD_WRITE_CTR  0x60
#define CMD_AUX_OFF    0xa7
#define CMD_AUX_ON     0xa8
#define CMD_SELF_TEST  0xaa
#define CMD_KBD_OFF    0xad
#define CMD_KBD_ON     0xae
#define CMD_WRITE_OUT  0xd1

#define SELF_TEST_OK   0x55
#define OUT_RESET_LINE 0x01 /* output port bit 0: low holds the CPU in reset */

static void i8042_output(struct i8042 *kbd, uint8_t val)
{
	kbd->out_buf = val;
	kbd->out_full = 1;
}

/* Commands 0xf0-0xff pulse the output port bits that are clear in their low nibble. */
static bool is_pulse_reset(uint8_t cmd)
{
	return (cmd & 0xf0) == 0xf0 && !(cmd & OUT_RESET_LINE);
}

/* Returns true when the command resets the CPU. */
static bool i8042_command(struct i8042 *kbd, uint8_t cmd)
{
	kbd->pending_cmd = 0;
	switch (cmd) {
	case CMD_READ_CTR: i8042_output(kbd, kbd->cmd_byte); break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUT: kbd->pending_cmd = cmd; break;
	case CMD_SELF_TEST:
		kbd->cmd_byte |= CTR_SYS;
		i8042_output(kbd, SELF_TEST_OK);
		break;
	case CMD_KBD_OFF: kbd->cmd_byte |= CTR_KBD_OFF; break;
	case CMD_KBD_ON: kbd->cmd_byte &= ~CTR_KBD_OFF; break;
	case CMD_AUX_OFF: kbd->cmd_byte |= CTR_AUX_OFF; break;
	case CMD_AUX_ON: kbd->cmd_byte &= ~CTR_AUX_OFF; break;
	default: return is_pulse_reset(cmd);
	}
	return false;
}

/* A byte written to port 0x60: the argument of a pending command, else keyboard data. */
static bool i8042_data(struct i8042 *kbd, uint8_t val)
{
	uint8_t cmd = kbd->pending_cmd;

	kbd->pending_cmd = 0;
	if (cmd == CMD_WRITE_CTR)
		kbd->cmd_byte = val;
	else if (cmd == CMD_WRITE_OUT)
		return !(val & OUT_RESET_LINE);
	return false;
}

static uint8_t i8042_status(const struct i8042 *kbd)
{
	return STATUS_UNLOCK | (kbd->cmd_byte & CTR_SYS ? STATUS_SYS : 0) |
	       (kbd->out_full ? STATUS_OBF : 0);
}

/* on_reset runs without the lock: it may stop vCPUs, one of which may be waiting for it. */
static void i8042_io(struct i8042 *kbd, bool is_cmd_port, uint8_t *data, uint32_t len,
		     bool is_write)
{
	bool reset = false;

	if (!is_write)
		memset(data, 0, len);
	pthread_mutex_lock(&kbd->lock);
	if (is_write && is_cmd_port) {
		reset = i8042_command(kbd, data[0]);
	} else if (is_write) {
		reset = i8042_data(kbd, data[0]);
	} else if (is_cmd_port) {
		data[0] = i8042_status(kbd);
	} else {
		/* An empty buffer reads as the last byte, as on the real part. */
		data[0] = kbd->out_buf;
		kbd->out_full = 0;
	}
	pthread_mutex_unlock(&kbd->lock);
	if (reset && kbd->on_reset)
		kbd->on_reset(kbd->opaque);
}

static void i8042_data_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	(void)offset; /* one port */
	i8042_io(dev, false, data, len, is_write);
}

static void i8042_cmd_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len,
			 bool is_write)
{
	(void)offset;
	i8042_io(dev, true, data, len, is_write);
}

void i8042_init(struct i8042 *kbd, void (*on_reset)(void *opaque), void *opaque)
{
	memset(kbd, 0, sizeof(*kbd));
	pthread_mutex_init(&kbd->lock, NULL);
	/* What a BIOS leaves behind: self test passed, scancode translation on. */
	kbd->cmd_byte = CTR_SYS | CTR_XLATE;
	kbd->on_reset = on_reset;
	kbd->opaque = opaque;
}

void i8042_destroy(struct i8042 *kbd)
{
	pthread_mutex_destroy(&kbd->lock);
}

const struct bus_dev_ops i8042_data_ops = {
	.name = "i8042-data",
	.io = i8042_data_io,
};

const struct bus_dev_ops i8042_cmd_ops = {
	.name = "i8042-cmd",
	.io = i8042_cmd_io,
};

void i8042_save(struct i8042 *kbd, struct i8042_state *st)
{
	pthread_mutex_lock(&kbd->lock);
	*st = (struct i8042_state){
		.cmd_byte = kbd->cmd_byte, .pending_cmd = kbd->pending_cmd,
		.out_buf = kbd->out_buf, .out_full = (uint8_t)!!kbd->out_full,
	};
	pthread_mutex_unlock(&kbd->lock);
}

void i8042_restore(struct i8042 *kbd, const struct i8042_state *st)
{
	pthread_mutex_lock(&kbd->lock);
	kbd->cmd_byte = st->cmd_byte;
	kbd->pending_cmd = st->pending_cmd;
	kbd->out_buf = st->out_buf;
	kbd->out_full = !!st->out_full;
	pthread_mutex_unlock(&kbd->lock);
}

/* ---- As a device of the table (core/device.h): ports 0x60 and 0x64 ---- */

struct i8042_dev {
	struct i8042 kbd;
	struct device_host host;
};

static void dev_reset(void *opaque)
{
	struct i8042_dev *d = opaque;

	d->host.reset_machine(d->host.opaque);
}

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct i8042_dev *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->host = *host;
	i8042_init(&d->kbd, dev_reset, d);
	ret = bus_register(bus, BUS_PIO, I8042_DATA_PORT, 1, &i8042_data_ops, &d->kbd);
	if (!ret)
		ret = bus_register(bus, BUS_PIO, I8042_CMD_PORT, 1, &i8042_cmd_ops, &d->kbd);
	*out = d;
	return ret;
}

static void dev_destroy(void *dev)
{
	struct i8042_dev *d = dev;

	if (d)
		i8042_destroy(&d->kbd);
	free(d);
}

static void dev_save(void *dev, void *state)
{
	i8042_save(&((struct i8042_dev *)dev)->kbd, state);
}

static int dev_check(const void *state)
{
	(void)state; /* any bytes are a state it could be in */
	return 0;
}

static int dev_restore(void *dev, const void *state)
{
	i8042_restore(&((struct i8042_dev *)dev)->kbd, state);
	return 0;
}

const struct device_type i8042_device = {
	.name = "i8042@60", .state_size = sizeof(struct i8042_state),
	.create = dev_create, .destroy = dev_destroy, .save = dev_save, .check = dev_check,
	.restore = dev_restore,
};
