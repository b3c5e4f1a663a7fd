/*
 * A 16550A UART. Transmission is instant: a byte written to THR goes to the
 * host at once and THR/TSR are empty again, so LSR always shows THRE|TEMT.
 * Reception goes through a 16-byte FIFO (one byte when FIFOs are disabled).
 * With no baud-rate timer, the character-timeout interrupt fires as soon as
 * the FIFO holds data below its trigger level.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/aml.h"
#include "core/layout.h"
#include "devices/uart.h"

/* Register offsets (DLAB selects DLL/DLM at 0 and 1). */
#define UART_RBR 0 /* read: receive buffer; write: THR */
#define UART_IER 1
#define UART_IIR 2 /* read: IIR; write: FCR */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI  0x01 /* receive data available */
#define IER_THRI 0x02 /* THR empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI  0x08 /* modem status */

#define IIR_NO_INT  0x01
#define IIR_MSI     0x00
#define IIR_THRI    0x02
#define IIR_RDI     0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_TRIGGER  0xc0

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS 0x1e /* OE, PE, FE, BI: the receiver line status interrupt */

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_DELTA 0x0f
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

/* What the far end shows when the line is not looped back: a terminal that is ready. */
#define MSR_LINES_READY (MSR_DCD | MSR_DSR | MSR_CTS)

#define UART_FIFO_SIZE 16

struct uart {
	pthread_mutex_t lock;
	struct uart_host host;
	uint8_t ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_pending;  /* THR-empty interrupt not yet acknowledged */
	int irq_level;     /* last level given to host->set_irq */
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
};

static bool fifo_on(const struct uart *u)
{
	return u->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart *u)
{
	return fifo_on(u) ? UART_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart *u)
{
	static const unsigned level[4] = { 1, 4, 8, 14 };

	return level[(u->fcr & FCR_TRIGGER) >> 6];
}

/* The pending interrupt of highest priority, as IIR bits 0-3. */
static uint8_t uart_pending_id(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & LSR_ERRORS))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count) {
		if (fifo_on(u) && u->rx_count < rx_trigger(u))
			return IIR_TIMEOUT;
		return IIR_RDI;
	}
	if ((u->ier & IER_THRI) && u->thr_pending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NO_INT;
}

/*
 * Drive the line from the current state. OUT2 does not gate it: guests that
 * never set OUT2 would lose interrupts, and Linux sets it anyway.
 */
static void uart_update_irq(struct uart *u)
{
	int level = uart_pending_id(u) != IIR_NO_INT;

	if (level == u->irq_level)
		return;
	u->irq_level = level;
	if (u->host.set_irq)
		u->host.set_irq(u->host.opaque, level);
}

/* Push one received byte; false when the FIFO is full (an overrun). */
static bool rx_push(struct uart *u, uint8_t byte)
{
	if (u->rx_count == rx_capacity(u)) {
		u->lsr |= LSR_OE;
		return false;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
	u->rx_count++;
	u->lsr |= LSR_DR;
	return true;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t byte;

	if (!u->rx_count)
		return 0;
	byte = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
	if (--u->rx_count == 0)
		u->lsr &= ~LSR_DR;
	return byte;
}

static void rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
	u->lsr &= ~LSR_DR;
}

/* The modem inputs: from the far end, or from MCR's own outputs in loopback. */
static uint8_t msr_lines(const struct uart *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return MSR_LINES_READY;
	return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0) |
	       (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
}

/* Update the status bits and latch the delta bits of every line that changed. */
static void msr_sample(struct uart *u)
{
	uint8_t old = u->msr, now = msr_lines(u), delta = 0;

	if ((old ^ now) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI)) /* trailing edge only */
		delta |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = now | (old & MSR_DELTA) | delta;
}

static void uart_write_thr(struct uart *u, uint8_t byte)
{
	if (u->mcr & MCR_LOOP)
		rx_push(u, byte);
	else if (u->host.tx)
		u->host.tx(u->host.opaque, &byte, 1);
	/* Sent at once: THR is empty again, which is a new THR-empty event. */
	u->thr_pending = true;
}

static void uart_write_ier(struct uart *u, uint8_t val)
{
	uint8_t old = u->ier;

	u->ier = val & 0x0f;
	/* Enabling THRI while THR is empty raises the interrupt, even after an IIR read. */
	if ((u->ier & IER_THRI) && !(old & IER_THRI))
		u->thr_pending = true;
}

static void uart_write_fcr(struct uart *u, uint8_t val)
{
	/* Switching the FIFOs on or off empties them. */
	if ((val ^ u->fcr) & FCR_ENABLE)
		rx_clear(u);
	if (val & FCR_CLEAR_RX)
		rx_clear(u);
	/* The transmit FIFO is always empty, so FCR_CLEAR_TX has nothing to do. */
	u->fcr = val & (FCR_ENABLE | FCR_TRIGGER);
	if (!fifo_on(u))
		u->fcr = 0;
}

static void uart_write_mcr(struct uart *u, uint8_t val)
{
	u->mcr = val & MCR_MASK;
	msr_sample(u);
}

static void uart_write(struct uart *u, unsigned reg, uint8_t val)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR:
		if (dlab)
			u->dll = val;
		else
			uart_write_thr(u, val);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = val;
		else
			uart_write_ier(u, val);
		break;
	case UART_IIR: uart_write_fcr(u, val); break;
	case UART_LCR: u->lcr = val; break;
	case UART_MCR: uart_write_mcr(u, val); break;
	case UART_SCR: u->scr = val; break;
	default: break; /* LSR and MSR are read only */
	}
}

static uint8_t uart_read_iir(struct uart *u)
{
	uint8_t id = uart_pending_id(u);

	/* Reading IIR is how a driver acknowledges a THR-empty interrupt. */
	if (id == IIR_THRI)
		u->thr_pending = false;
	return id | (fifo_on(u) ? IIR_FIFO_ON : 0);
}

static uint8_t uart_read_lsr(struct uart *u)
{
	uint8_t val = u->lsr;

	u->lsr &= ~LSR_ERRORS; /* error bits clear on read */
	return val;
}

static uint8_t uart_read_msr(struct uart *u)
{
	uint8_t val = u->msr;

	u->msr &= ~MSR_DELTA;
	return val;
}

static uint8_t uart_read(struct uart *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR: return dlab ? u->dll : rx_pop(u);
	case UART_IER: return dlab ? u->dlm : u->ier;
	case UART_IIR: return uart_read_iir(u);
	case UART_LCR: return u->lcr;
	case UART_MCR: return u->mcr;
	case UART_LSR: return uart_read_lsr(u);
	case UART_MSR: return uart_read_msr(u);
	default: return u->scr;
	}
}

/* A wider access reaches consecutive registers, as on an 8-bit ISA device. */
static void uart_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = dev;

	pthread_mutex_lock(&u->lock);
	for (uint32_t i = 0; i < len; i++) {
		unsigned reg = (offset + i) & 7;

		if (is_write)
			uart_write(u, reg, data[i]);
		else
			data[i] = uart_read(u, reg);
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/*
	 * In loopback the serial input is disconnected: the host keeps its bytes for
	 * later. Host input also stops at a full FIFO instead of overrunning: the
	 * console offers the rest again, so nothing is lost and no OE is reported.
	 */
	if (!(u->mcr & MCR_LOOP))
		while (n < len && u->rx_count < rx_capacity(u) && rx_push(u, buf[n]))
			n++;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

static void uart_reset(struct uart *u)
{
	u->ier = 0;
	u->fcr = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = MSR_LINES_READY;
	u->scr = 0;
	u->dll = 12; /* 9600 baud from the PC's 1.8432 MHz clock */
	u->dlm = 0;
	u->thr_pending = false;
	u->irq_level = 0;
	rx_clear(u);
}

int uart_create(struct uart **out, const struct uart_host *host)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	u->host = *host;
	uart_reset(u);
	*out = u;
	return 0;
}

void uart_destroy(struct uart *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

const struct bus_dev_ops uart_bus_ops = {
	.name = "uart-16550a",
	.io = uart_io,
};

void uart_save(struct uart *u, struct uart_state *st)
{
	pthread_mutex_lock(&u->lock);
	*st = (struct uart_state){
		.ier = u->ier, .fcr = u->fcr, .lcr = u->lcr, .mcr = u->mcr, .lsr = u->lsr,
		.msr = u->msr, .scr = u->scr, .dll = u->dll, .dlm = u->dlm,
		.thr_pending = u->thr_pending, .rx_head = u->rx_head, .rx_count = u->rx_count,
	};
	memcpy(st->rx, u->rx, sizeof(st->rx));
	pthread_mutex_unlock(&u->lock);
}

int uart_check_state(const struct uart_state *st)
{
	_Static_assert(sizeof(st->rx) == UART_FIFO_SIZE, "FIFO sizes differ");
	return st->rx_head >= UART_FIFO_SIZE || st->rx_count > UART_FIFO_SIZE ? -EINVAL : 0;
}

int uart_restore(struct uart *u, const struct uart_state *st)
{
	if (uart_check_state(st) < 0)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	u->ier = st->ier;
	u->fcr = st->fcr;
	u->lcr = st->lcr;
	u->mcr = st->mcr;
	u->lsr = st->lsr;
	u->msr = st->msr;
	u->scr = st->scr;
	u->dll = st->dll;
	u->dlm = st->dlm;
	u->thr_pending = st->thr_pending;
	memcpy(u->rx, st->rx, sizeof(u->rx));
	u->rx_head = st->rx_head;
	u->rx_count = st->rx_count;
	u->irq_level = -1; /* the new VM's line is unknown: drive it either way */
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

/* ---- As a device of the table (core/device.h): COM1, IRQ 4 ---- */

struct uart_dev {
	struct uart *uart;
	struct device_host host;
};

static void dev_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart_dev *d = opaque;

	d->host.console_out(d->host.opaque, buf, len);
}

static void dev_set_irq(void *opaque, int level)
{
	struct uart_dev *d = opaque;

	d->host.set_irq(d->host.opaque, COM1_IRQ, level);
}

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct uart_dev *d = calloc(1, sizeof(*d));
	struct uart_host uh = { .tx = dev_tx, .set_irq = dev_set_irq, .opaque = d };
	int ret = d ? 0 : -ENOMEM;

	if (d) {
		d->host = *host;
		ret = uart_create(&d->uart, &uh);
	}
	if (!ret)
		ret = bus_register(bus, BUS_PIO, COM1_PORT, 8, &uart_bus_ops, d->uart);
	if (ret < 0 && d) {
		uart_destroy(d->uart);
		free(d);
		return ret;
	}
	*out = d;
	return ret;
}

static void dev_destroy(void *dev)
{
	struct uart_dev *d = dev;

	if (d)
		uart_destroy(d->uart);
	free(d);
}

static void dev_save(void *dev, void *state)
{
	uart_save(((struct uart_dev *)dev)->uart, state);
}

static int dev_check(const void *state)
{
	return uart_check_state(state);
}

static int dev_restore(void *dev, const void *state)
{
	return uart_restore(((struct uart_dev *)dev)->uart, state);
}

static size_t dev_receive(void *dev, const uint8_t *buf, size_t len)
{
	return uart_receive(((struct uart_dev *)dev)->uart, buf, len);
}

/* COM1 for the DSDT, so that Linux's 8250_pnp claims it through ACPI as on a PC. */
static int dev_describe(void *dev, struct aml *dsdt)
{
	aml_device(dsdt, "COM1");
	aml_name_eisaid(dsdt, "_HID", "PNP0501");
	aml_name_int(dsdt, "_UID", 1);
	aml_crs_begin(dsdt);
	aml_crs_io(dsdt, COM1_PORT, 8);
	aml_crs_irq(dsdt, COM1_IRQ, false, false);
	aml_crs_end(dsdt);
	aml_end(dsdt);
	return 0;
}

const struct device_type uart_device = {
	.name = "uart@3f8", .state_size = sizeof(struct uart_state),
	.create = dev_create, .destroy = dev_destroy, .save = dev_save, .check = dev_check,
	.restore = dev_restore, .receive = dev_receive, .describe = dev_describe,
};
