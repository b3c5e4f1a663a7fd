/*
 * Console output: LOG messages to the control device (any CPL) with a small
 * printf, and COM1 by port I/O for CPL0 code.
 */
#pragma GCC target("general-regs-only")
#include "core/layout.h"
#include "internal.h"

#define LOG_TEXT_MAX 512

struct out {
	char *buf;
	size_t size, pos;
};

struct spec {
	int width, longs;
	bool zero, left, upper;
};

static void put(struct out *o, char c)
{
	if (o->pos + 1 < o->size)
		o->buf[o->pos] = c;
	o->pos++;
}

static void put_padded(struct out *o, const char *s, size_t len, const struct spec *sp)
{
	size_t pad = sp->width > 0 && (size_t)sp->width > len ? (size_t)sp->width - len : 0;

	if (!sp->left)
		while (pad--)
			put(o, sp->zero ? '0' : ' ');
	while (len--)
		put(o, *s++);
	if (sp->left)
		while (pad--)
			put(o, ' ');
}

static void put_number(struct out *o, uint64_t v, unsigned base, bool neg, const struct spec *sp)
{
	const char *digits = sp->upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = digits[v % base];
		v /= base;
	} while (v);
	if (neg) {
		if (sp->zero && sp->width > 0) { /* sign goes before the zeros */
			struct spec rest = *sp;

			put(o, '-');
			rest.width--;
			put_padded(o, tmp + i, sizeof(tmp) - i, &rest);
			return;
		}
		tmp[--i] = '-';
	}
	put_padded(o, tmp + i, sizeof(tmp) - i, sp);
}

static const char *parse_spec(const char *f, struct spec *sp)
{
	*sp = (struct spec){ 0 };
	for (;; f++) {
		if (*f == '0')
			sp->zero = true;
		else if (*f == '-')
			sp->left = true;
		else
			break;
	}
	while (*f >= '0' && *f <= '9')
		sp->width = sp->width * 10 + (*f++ - '0');
	for (; *f == 'l' || *f == 'z' || *f == 'h'; f++)
		if (*f != 'h')
			sp->longs++;
	return f;
}

static uint64_t arg_unsigned(va_list *ap, int longs)
{
	return longs ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned);
}

static void convert(struct out *o, char c, struct spec *sp, va_list *ap)
{
	const char *s;
	int64_t d;

	switch (c) {
	case 'd':
	case 'i':
		d = sp->longs ? va_arg(*ap, int64_t) : va_arg(*ap, int);
		put_number(o, d < 0 ? -(uint64_t)d : (uint64_t)d, 10, d < 0, sp);
		break;
	case 'u':
		put_number(o, arg_unsigned(ap, sp->longs), 10, false, sp);
		break;
	case 'X':
		sp->upper = true;
		/* fall through */
	case 'x':
		put_number(o, arg_unsigned(ap, sp->longs), 16, false, sp);
		break;
	case 'p':
		put(o, '0');
		put(o, 'x');
		put_number(o, (uintptr_t)va_arg(*ap, void *), 16, false, sp);
		break;
	case 's':
		s = va_arg(*ap, const char *);
		s = s ? s : "(null)";
		put_padded(o, s, strlen(s), sp);
		break;
	case 'c':
		put(o, (char)va_arg(*ap, int));
		break;
	default: /* %% and anything we do not know: print it */
		put(o, c);
	}
}

/* %[-0][width][l|ll|z](d i u x X p s c %); returns the length it wanted, like snprintf. */
int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	struct spec sp;
	va_list aq;

	va_copy(aq, ap);
	while (*fmt) {
		if (*fmt != '%') {
			put(&o, *fmt++);
			continue;
		}
		fmt = parse_spec(fmt + 1, &sp);
		if (!*fmt)
			break;
		convert(&o, *fmt++, &sp, &aq);
	}
	va_end(aq);
	if (size)
		buf[o.pos < size ? o.pos : size - 1] = '\0';
	return (int)o.pos;
}

int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = rt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

struct log_buf {
	struct vmfork_log_msg msg;
	char text[LOG_TEXT_MAX];
};

/* The message lives on our stack: identity mapped, so its address is its GPA. */
static void log_send(struct log_buf *lb, size_t len)
{
	lb->msg.len = (unsigned)(len < LOG_TEXT_MAX ? len : LOG_TEXT_MAX);
	lb->msg.reserved = 0;
	rt_ctl_write(VMFORK_CTL_LOG, (uintptr_t)&lb->msg);
}

void rt_log(const char *text, size_t len)
{
	struct log_buf lb __attribute__((aligned(8)));

	len = len < LOG_TEXT_MAX ? len : LOG_TEXT_MAX;
	memcpy(lb.text, text, len);
	log_send(&lb, len);
}

void rt_puts(const char *s)
{
	rt_log(s, strlen(s));
}

/* Format prefix + fmt (+ a newline) into one message, cut to fit. */
static int log_vprintf(const char *prefix, bool newline, const char *fmt, va_list ap)
{
	struct log_buf lb __attribute__((aligned(8)));
	size_t n = strlen(prefix), room = sizeof(lb.text) - 1 - newline;
	int len;

	memcpy(lb.text, prefix, n);
	len = rt_vsnprintf(lb.text + n, room + 1 - n, fmt, ap);
	n += (size_t)len < room - n ? (size_t)len : room - n;
	if (newline)
		lb.text[n++] = '\n';
	log_send(&lb, n);
	return len;
}

int rt_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = log_vprintf("", false, fmt, ap);
	va_end(ap);
	return n;
}

void rt_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprintf("rt: panic: ", true, fmt, ap);
	va_end(ap);
	rt_exit(RT_EXIT_PANIC);
}

/* Wait (bounded: a missing UART must not hang us) for the transmitter, then send. */
void rt_uart_putc(char c)
{
	for (int i = 0; i < 100000 && !(inb(COM1_PORT + 5) & 0x20); i++)
		asm volatile("pause");
	outb(COM1_PORT, (uint8_t)c);
}

void rt_uart_puts(const char *s)
{
	while (*s)
		rt_uart_putc(*s++);
}
