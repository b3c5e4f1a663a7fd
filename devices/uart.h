/* A 16550A UART (COM1 by default): transmit to a host callback, receive from the host. */
#ifndef DEVICES_UART_H
#define DEVICES_UART_H

#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/device.h"

struct uart_host {
	/* Bytes the guest transmitted. Called with the UART's lock held. */
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	/* Drive the interrupt line (level 0 or 1). Called with the UART's lock held. */
	void (*set_irq)(void *opaque, int level);
	void *opaque;
};

struct uart;

/* Everything a snapshot or a fork needs to recreate the UART; plain data. */
struct uart_state {
	uint8_t ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t thr_pending;
	uint8_t rx[16];
	uint32_t rx_head, rx_count;
};

int uart_create(struct uart **out, const struct uart_host *host);
void uart_destroy(struct uart *uart);
/* Queue bytes typed on the host; returns how many fit in the receive FIFO. */
size_t uart_receive(struct uart *uart, const uint8_t *buf, size_t len);

void uart_save(struct uart *uart, struct uart_state *st);
/* Whether st is a state the UART could be in (its FIFO indices in range): 0 or -EINVAL. */
int uart_check_state(const struct uart_state *st);
/* Load a saved state (checked: -EINVAL for an impossible FIFO) and re-drive the IRQ line. */
int uart_restore(struct uart *uart, const struct uart_state *st);

extern const struct bus_dev_ops uart_bus_ops; /* claim 8 ports */
/* COM1 in the device table (core/device.h). */
extern const struct device_type uart_device;

#endif
