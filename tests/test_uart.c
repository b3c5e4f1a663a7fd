/* The 16550A model, driven through its bus ops as a guest driver would. */
#include <criterion/criterion.h>
#include <string.h>

#include "devices/uart.h"

enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };

struct uart_fake {
	uint8_t tx[64];
	size_t ntx;
	int level;
	unsigned irq_changes;
};

static void fake_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart_fake *f = opaque;

	cr_assert_leq(f->ntx + len, sizeof(f->tx));
	memcpy(f->tx + f->ntx, buf, len);
	f->ntx += len;
}

static void fake_set_irq(void *opaque, int level)
{
	struct uart_fake *f = opaque;

	cr_assert_neq(level, f->level, "set_irq called without a change of level");
	f->level = level;
	f->irq_changes++;
}

static struct uart_fake fake;
static struct uart *uart;

static void uart_setup(void)
{
	struct uart_host host = { .tx = fake_tx, .set_irq = fake_set_irq, .opaque = &fake };

	memset(&fake, 0, sizeof(fake));
	cr_assert_eq(uart_create(&uart, &host), 0);
}

static void uart_teardown(void)
{
	uart_destroy(uart);
}

static uint8_t rd(unsigned reg)
{
	uint8_t v = 0xee;

	uart_bus_ops.io(uart, reg, &v, 1, false);
	return v;
}

static void wr(unsigned reg, uint8_t v)
{
	uart_bus_ops.io(uart, reg, &v, 1, true);
}

TestSuite(uart, .init = uart_setup, .fini = uart_teardown);

Test(uart, reset_state)
{
	cr_assert_eq(rd(LSR), 0x60); /* THRE | TEMT */
	cr_assert_eq(rd(IIR), 0x01); /* no interrupt, FIFOs off */
	cr_assert_eq(rd(IER), 0);
	cr_assert_eq(rd(LCR), 0);
	cr_assert_eq(rd(MSR) & 0xf0, 0xb0); /* DCD, DSR, CTS */
	cr_assert_eq(fake.level, 0);
}

Test(uart, transmit)
{
	wr(RBR, 'h');
	wr(RBR, 'i');
	cr_assert_eq(fake.ntx, 2);
	cr_assert_eq(memcmp(fake.tx, "hi", 2), 0);
	cr_assert_eq(rd(LSR) & 0x60, 0x60);
}

Test(uart, wide_access_reaches_consecutive_registers)
{
	uint8_t v[2] = { 'A', 0x03 };

	uart_bus_ops.io(uart, RBR, v, 2, true); /* THR, then IER */
	cr_assert_eq(fake.ntx, 1);
	cr_assert_eq(rd(IER), 0x03);
}

Test(uart, divisor_latch)
{
	wr(IER, 0x05);
	wr(LCR, 0x83);
	wr(RBR, 0x01);
	wr(IER, 0x00);
	cr_assert_eq(rd(RBR), 0x01);
	cr_assert_eq(rd(IER), 0x00);
	cr_assert_eq(fake.ntx, 0, "a DLL write must not transmit");
	wr(LCR, 0x03);
	cr_assert_eq(rd(IER), 0x05, "IER must survive divisor writes");
	cr_assert_eq(rd(LCR), 0x03);
	wr(LCR, 0x83);
	cr_assert_eq(rd(RBR), 0x01);
}

Test(uart, scratch_and_ier_bits)
{
	wr(SCR, 0xa5);
	cr_assert_eq(rd(SCR), 0xa5);
	wr(SCR, 0x5a);
	cr_assert_eq(rd(SCR), 0x5a);
	wr(IER, 0xff);
	cr_assert_eq(rd(IER), 0x0f, "IER bits 4-7 read as 0 on a 16550A");
}

Test(uart, fifo_enable_in_iir)
{
	wr(IIR, 0x01);
	cr_assert_eq(rd(IIR), 0xc1);
	/* FCR bit 5 (64-byte FIFO of a 16750) does not show in IIR. */
	wr(IIR, 0x21);
	cr_assert_eq(rd(IIR), 0xc1);
	wr(IIR, 0x00);
	cr_assert_eq(rd(IIR), 0x01);
}

Test(uart, receive_raises_irq)
{
	const uint8_t b = 'k';

	cr_assert_eq(uart_receive(uart, &b, 1), 1);
	cr_assert_eq(rd(LSR) & 0x01, 0x01);
	cr_assert_eq(fake.level, 0, "no IRQ while IER is 0");
	wr(IER, 0x01);
	cr_assert_eq(fake.level, 1);
	cr_assert_eq(rd(IIR), 0x04);
	cr_assert_eq(rd(RBR), 'k');
	cr_assert_eq(rd(LSR) & 0x01, 0);
	cr_assert_eq(fake.level, 0);
	cr_assert_eq(rd(IIR), 0x01);
}

Test(uart, iir_priority)
{
	const uint8_t b = 'z';

	wr(IER, 0x0f); /* THR empty fires at once */
	cr_assert_eq(fake.level, 1);
	cr_assert_eq(uart_receive(uart, &b, 1), 1);
	cr_assert_eq(rd(IIR), 0x04, "receive data outranks THR empty");
	rd(RBR);
	cr_assert_eq(rd(IIR), 0x02);
	/* Reading IIR acknowledged THR empty. */
	cr_assert_eq(rd(IIR), 0x01);
	cr_assert_eq(fake.level, 0);
	/* A modem line change (via loopback) is the lowest priority. */
	wr(MCR, 0x10);
	cr_assert_eq(rd(IIR), 0x00);
	cr_assert_eq(fake.level, 1);
	cr_assert_neq(rd(MSR) & 0x0f, 0);
	cr_assert_eq(rd(IIR), 0x01);
	cr_assert_eq(fake.level, 0);
}

Test(uart, thr_empty_after_transmit)
{
	wr(IER, 0x02);
	cr_assert_eq(rd(IIR), 0x02);
	cr_assert_eq(fake.level, 0);
	wr(RBR, 'x');
	cr_assert_eq(fake.level, 1, "THR empty again after a byte is sent");
	wr(IER, 0x00);
	cr_assert_eq(fake.level, 0);
}

Test(uart, loopback)
{
	uint8_t b = 'q';

	wr(IIR, 0x01);
	wr(MCR, 0x1a); /* LOOP | OUT2 | RTS: what Linux probes with */
	cr_assert_eq(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0x15); /* LOOP | OUT1 | DTR */
	cr_assert_eq(rd(MSR) & 0xf0, 0x60);
	wr(RBR, 0x42);
	cr_assert_eq(fake.ntx, 0, "loopback must not reach the host");
	cr_assert_eq(rd(LSR) & 0x01, 0x01);
	cr_assert_eq(rd(RBR), 0x42);
	cr_assert_eq(uart_receive(uart, &b, 1), 0, "serial input is cut off in loopback");
	wr(MCR, 0x00);
	cr_assert_eq(rd(MSR) & 0xf0, 0xb0);
	cr_assert_eq(uart_receive(uart, &b, 1), 1);
}

Test(uart, receive_overflow)
{
	uint8_t buf[20];

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	cr_assert_eq(uart_receive(uart, buf, 4), 1, "no FIFO: one holding register");
	cr_assert_eq(rd(LSR) & 0x03, 0x01, "host input waits instead of overrunning");
	wr(IIR, 0x07); /* enable and clear the FIFOs */
	cr_assert_eq(rd(LSR) & 0x01, 0);
	cr_assert_eq(uart_receive(uart, buf, sizeof(buf)), 16);
	cr_assert_eq(rd(LSR) & 0x03, 0x01);
	for (unsigned i = 0; i < 16; i++)
		cr_assert_eq(rd(RBR), i);
	cr_assert_eq(rd(LSR) & 0x01, 0);
	cr_assert_eq(uart_receive(uart, buf + 16, 4), 4);
	cr_assert_eq(rd(RBR), 16);
}

Test(uart, line_status_and_timeout_irq)
{
	uint8_t buf[20] = { 0 };

	wr(IIR, 0xc1); /* FIFO on, trigger level 14 */
	wr(IER, 0x05);
	cr_assert_eq(uart_receive(uart, buf, 2), 2);
	cr_assert_eq(rd(IIR), 0xcc, "below the trigger level: character timeout");
	cr_assert_eq(uart_receive(uart, buf, 20), 14);
	cr_assert_eq(rd(IIR), 0xc4, "trigger level reached: data available");
}

Test(uart, linux_autoconfig_sees_16550a)
{
	uint8_t iir;

	/* IER test */
	wr(IER, 0);
	cr_assert_eq(rd(IER) & 0x0f, 0);
	wr(IER, 0x0f);
	cr_assert_eq(rd(IER) & 0x0f, 0x0f);
	wr(IER, 0);
	/* EFR write with LCR=0xbf lands in FCR, then FIFO detection */
	wr(LCR, 0xbf);
	wr(IIR, 0);
	wr(LCR, 0);
	wr(IIR, 0x01);
	cr_assert_eq(rd(IIR) >> 6, 3);
	/* No EFR: the IIR at offset 2 is non-zero with DLAB set */
	wr(LCR, 0x80);
	cr_assert_neq(rd(IIR), 0);
	wr(LCR, 0xbf);
	cr_assert_neq(rd(IIR), 0);
	/* Not a TI16750 */
	wr(LCR, 0);
	wr(IIR, 0x21);
	iir = rd(IIR) >> 5;
	wr(LCR, 0x80);
	wr(IIR, 0x21);
	cr_assert_neq(rd(IIR) >> 5, 7);
	cr_assert_eq(iir, 6);
	wr(LCR, 0);
	/* Not an XScale: IER bit 6 does not stick */
	wr(IER, 0x40);
	cr_assert_eq(rd(IER) & 0x40, 0);
}

Test(uart, loopback_overrun)
{
	wr(MCR, 0x10);  /* loopback, FIFOs off: one holding register */
	wr(IER, 0x04);  /* receiver line status interrupt */
	wr(RBR, 0x11);
	wr(RBR, 0x22);  /* nobody read the first byte */
	cr_assert_eq(rd(IIR) & 0x0f, 0x06, "overrun raises the line status interrupt");
	cr_assert_eq(rd(LSR) & 0x03, 0x03);
	cr_assert_eq(rd(LSR) & 0x02, 0, "OE clears on read");
	cr_assert_eq(rd(RBR), 0x11, "the byte that overran is lost, not the first");
}
