/*
 * The host side of the guest's serial console: where its output goes and
 * where its input comes from. One console per VM; the spec says which:
 *   "stdio"        output to stdout, input from stdin (the default, also for
 *                  NULL or ""). While input runs on a terminal, the terminal is
 *                  raw and Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A.
 *   "none"         output dropped, no input.
 *   "file:PATH"    output appended to PATH, no input.
 *   "socket:PATH"  a Unix stream socket the VMM listens on; one client at a
 *                  time gets output and sends input; output with no client is
 *                  dropped. Clients are accepted by the input thread, so call
 *                  console_start_input() for this kind too.
 *   "fd:N"         output to an inherited fd N (duplicated: N stays the caller's).
 */
#ifndef CORE_CONSOLE_H
#define CORE_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

struct console;

/* Receives input; returns how many bytes it took. The rest is offered again a little later. */
typedef size_t (*console_rx_fn)(void *opaque, const uint8_t *buf, size_t len);

/* Returns 0, -EINVAL for a bad spec, or the -errno of the failed open/bind. */
int console_open(struct console **out, const char *spec);

/*
 * Guest output. Safe from any thread, also with the UART lock held (rx never
 * runs under the console's lock). A socket client that does not keep up is
 * disconnected rather than stall the caller; output after a write error on
 * a file or fd is dropped.
 */
void console_write(struct console *c, const uint8_t *buf, size_t len);

/*
 * Start the thread that reads input and hands it to rx. on_quit (may be NULL)
 * runs on that thread when the user types Ctrl-A x; it must not call
 * console_close(). Neither callback runs with a console lock held. Kinds
 * without input return 0 and start nothing. -EBUSY when already started.
 */
int console_start_input(struct console *c, console_rx_fn rx, void (*on_quit)(void *opaque),
			void *opaque);

/* Stop the thread, restore the terminal, close the fds, remove the socket. NULL is ok. */
void console_close(struct console *c);

#endif
