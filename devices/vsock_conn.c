/* virtio-vsock's connections (devices/vsock_conn.h). */
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock_conn.h"

/* ---- the header on the wire ---- */

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	uint64_t q[2];
	uint32_t d[3], tail[3];
	uint16_t w[2];

	memcpy(q, raw, 16);
	memcpy(d, raw + 16, 12);
	memcpy(w, raw + 28, 4);
	memcpy(tail, raw + 32, 12);
	*h = (struct vsock_hdr){
		.src_cid = le64toh(q[0]), .dst_cid = le64toh(q[1]), .src_port = le32toh(d[0]),
		.dst_port = le32toh(d[1]), .len = le32toh(d[2]), .type = le16toh(w[0]),
		.op = le16toh(w[1]), .flags = le32toh(tail[0]), .buf_alloc = le32toh(tail[1]),
		.fwd_cnt = le32toh(tail[2]),
	};
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE])
{
	uint64_t q[2] = { htole64(h->src_cid), htole64(h->dst_cid) };
	uint32_t d[3] = { htole32(h->src_port), htole32(h->dst_port), htole32(h->len) };
	uint16_t w[2] = { htole16(h->type), htole16(h->op) };
	uint32_t tail[3] = { htole32(h->flags), htole32(h->buf_alloc), htole32(h->fwd_cnt) };

	memcpy(raw, q, 16);
	memcpy(raw + 16, d, 12);
	memcpy(raw + 28, w, 4);
	memcpy(raw + 32, tail, 12);
}

/* ---- host sockets ---- */

bool vsock_sandboxed(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2;
}

/* An EPIPE left a SIGPIPE pending on this thread, which blocks it: take it back. */
static void drop_sigpipe(void)
{
	const struct timespec zero = { 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
}

/* write() to a non-blocking socket: the bytes taken (0: it is full), or -errno. */
static ssize_t sock_write(int fd, const void *buf, size_t len)
{
	ssize_t n;
	int err;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	err = errno;
	if (err == EAGAIN)
		return 0;
	if (err == EPIPE)
		drop_sigpipe();
	return -err;
}

static ssize_t sock_read(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* The host's socket for guest port P: "PATH_P". -errno when there is none to connect to. */
static int connect_host(const struct vsock_mux *m, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", m->path, port), fd, err;

	if (!m->path[0] || n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* EPERM in a clone worker's sandbox, which allows no new sockets (fork/sandbox.c). */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno; /* ENOENT, ECONNREFUSED, or EAGAIN for a full backlog */
		close(fd);
		return err;
	}
	return fd;
}

/* ---- the table ---- */

void vsock_mux_init(struct vsock_mux *m, uint64_t cid)
{
	memset(m, 0, sizeof(*m));
	m->cid = cid;
	m->next_port = VSOCK_HOST_PORT_FIRST;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		m->conns[i].fd = -1;
}

static void conn_close_fd(struct vsock_conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* which also takes it out of the device's epoll */
	c->fd = -1;
	c->in_epoll = c->readable = c->hup = false;
	free(c->backlog);
	c->backlog = NULL;
	c->back_off = c->back_len = 0;
}

static void conn_free(struct vsock_mux *m, struct vsock_conn *c)
{
	conn_close_fd(c);
	c->state = CONN_FREE;
	m->accept_blocked = false;
}

void vsock_mux_reset(struct vsock_mux *m)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (m->conns[i].state != CONN_FREE)
			conn_free(m, &m->conns[i]);
	m->rst_len = 0;
}

/* A free slot, cleared, its generation moved on; still CONN_FREE until the caller sets it up. */
static struct vsock_conn *conn_new(struct vsock_mux *m)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &m->conns[i];
		uint32_t gen = c->gen + 1;

		if (c->state != CONN_FREE)
			continue;
		memset(c, 0, sizeof(*c));
		c->gen = gen;
		c->fd = -1;
		return c;
	}
	return NULL;
}

bool vsock_mux_full(const struct vsock_mux *m)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (m->conns[i].state == CONN_FREE)
			return m->accept_blocked;
	return true;
}

static struct vsock_conn *conn_find(struct vsock_mux *m, uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &m->conns[i];

		if (c->state != CONN_FREE && c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

/*
 * Drop the host side. The guest is owed an RST (CONN_RESET) unless it never
 * heard of the connection: a host client still at its command, or whose
 * REQUEST was not sent yet.
 */
static void conn_reset(struct vsock_mux *m, struct vsock_conn *c)
{
	bool told = c->state != CONN_CMD &&
		    !(c->state == CONN_CONNECTING && (c->pending & PEND_REQUEST));

	conn_close_fd(c);
	c->pending = 0;
	c->deadline_ms = 0;
	if (told)
		c->state = CONN_RESET;
	else
		conn_free(m, c);
}

/* An RST for a packet of no connection (bounded: past VSOCK_RST_QUEUE they are dropped). */
static void queue_rst(struct vsock_mux *m, const struct vsock_hdr *h)
{
	unsigned i = (m->rst_head + m->rst_len) % VSOCK_RST_QUEUE;

	if (h->op == VSOCK_OP_RST)
		return; /* never answer an RST */
	if (m->rst_len == VSOCK_RST_QUEUE) {
		m->stats.rst_dropped++;
		return;
	}
	m->rst[i].host_port = h->dst_port;
	m->rst[i].guest_port = h->src_port;
	m->rst_len++;
}

/* ---- credit ---- */

/* Bytes the guest can take now: its buffer less what is in flight (0 for nonsense it sent). */
static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Bytes the guest may still send: our buffer less what waits for the socket. */
static uint32_t our_free(const struct vsock_conn *c)
{
	uint32_t used = c->rx_cnt - c->fwd_cnt;

	return used >= VSOCK_CONN_BUF ? 0 : VSOCK_CONN_BUF - used;
}

/* Tell the guest about freed space once it believes less than half is left. */
static void maybe_credit(struct vsock_conn *c)
{
	if (c->fwd_cnt != c->sent_fwd_cnt && c->rx_cnt - c->sent_fwd_cnt > VSOCK_CONN_BUF / 2)
		c->pending |= PEND_CREDIT;
}

/* Whether host bytes may go to the guest now (its credit allowing). */
static bool can_send(const struct vsock_conn *c)
{
	return c->state == CONN_ESTABLISHED && c->fd >= 0 && !c->host_eof &&
	       !(c->guest_shut & VSOCK_SHUTDOWN_RCV) && !(c->pending & PEND_RESPONSE) &&
	       peer_credit(c) > 0;
}

uint32_t vsock_conn_events(const struct vsock_conn *c)
{
	if (c->fd < 0 || c->hup)
		return 0;
	if (c->state == CONN_CMD)
		return EPOLLIN;
	if (c->state != CONN_ESTABLISHED)
		return 0;
	return (can_send(c) && !c->readable ? EPOLLIN : 0) | (c->back_len ? EPOLLOUT : 0);
}

/* ---- guest to host bytes ---- */

/* Keep what the socket did not take; the credit check made room for it. */
static int backlog_add(struct vsock_conn *c, const uint8_t *data, uint32_t len)
{
	if (!len)
		return 0;
	if (!c->backlog && !(c->backlog = malloc(VSOCK_CONN_BUF)))
		return -ENOMEM;
	if (c->back_off + c->back_len + len > VSOCK_CONN_BUF) {
		memmove(c->backlog, c->backlog + c->back_off, c->back_len);
		c->back_off = 0;
	}
	memcpy(c->backlog + c->back_off + c->back_len, data, len);
	c->back_len += len;
	return 0;
}

/* Write what waits to the socket: 0, or -errno when the socket failed. */
static int flush(struct vsock_conn *c)
{
	while (c->back_len) {
		ssize_t n = sock_write(c->fd, c->backlog + c->back_off, c->back_len);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		c->back_off += (uint32_t)n;
		c->back_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (!c->back_len) {
		free(c->backlog);
		c->backlog = NULL;
		c->back_off = 0;
	}
	maybe_credit(c);
	return 0;
}

/*
 * The guest shut its side: act on it once its bytes are out. Both ways: the
 * host socket closes and the guest gets the RST it waits for (Linux lingers
 * until then). Sending only: the client sees EOF, but not in a clone
 * worker's sandbox, where shutdown() is not allowed: there it waits for both.
 */
static void guest_shut_progress(struct vsock_mux *m, struct vsock_conn *c)
{
	if (c->back_len || c->fd < 0)
		return;
	if ((c->guest_shut & VSOCK_SHUTDOWN_BOTH) == VSOCK_SHUTDOWN_BOTH)
		conn_reset(m, c);
	else if ((c->guest_shut & VSOCK_SHUTDOWN_SEND) && !c->half_closed && !vsock_sandboxed()) {
		shutdown(c->fd, SHUT_WR);
		c->half_closed = true;
	}
}

static void guest_rw(struct vsock_mux *m, struct vsock_conn *c, const struct vsock_hdr *h,
		     const uint8_t *payload)
{
	ssize_t n = 0;

	if (c->state == CONN_CLOSING || c->state == CONN_RESET)
		return; /* the host side is gone; the guest learns it from our SHUTDOWN or RST */
	if (c->state != CONN_ESTABLISHED || (c->guest_shut & VSOCK_SHUTDOWN_SEND)) {
		m->stats.bad_packets++;
		conn_reset(m, c);
		return;
	}
	if (h->len > our_free(c)) {
		m->stats.credit_violations++;
		conn_reset(m, c);
		return;
	}
	c->rx_cnt += h->len;
	if (c->hup)
		n = h->len; /* nobody reads them any more: dropped, and the credit goes back */
	else if (!c->back_len && h->len)
		n = sock_write(c->fd, payload, h->len);
	if (n < 0 || backlog_add(c, payload + n, h->len - (uint32_t)n) < 0) {
		conn_reset(m, c);
		return;
	}
	c->fwd_cnt += (uint32_t)n;
	maybe_credit(c);
}

/* ---- the guest's packets ---- */

/* A guest connecting to the host: to PATH_<port>, or refused with an RST. */
static void guest_request(struct vsock_mux *m, const struct vsock_hdr *h)
{
	struct vsock_conn *c = conn_find(m, h->dst_port, h->src_port);
	int fd;

	if (c) { /* a pair already in use: Linux never does that */
		m->stats.bad_packets++;
		conn_reset(m, c);
		return;
	}
	c = conn_new(m);
	fd = c ? connect_host(m, h->dst_port) : -ENOSPC;
	if (fd < 0) {
		m->stats.refused++;
		queue_rst(m, h);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->fd = fd;
	c->host_port = h->dst_port;
	c->guest_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending = PEND_RESPONSE;
	m->stats.guest_connects++;
}

/* The guest's listener took a host client's connection: tell the client its port. */
static void guest_response(struct vsock_mux *m, struct vsock_conn *c)
{
	char line[24];
	int n = snprintf(line, sizeof(line), "OK %u\n", c->host_port);

	if (c->state != CONN_CONNECTING || (c->pending & PEND_REQUEST)) {
		m->stats.bad_packets++;
		conn_reset(m, c);
		return;
	}
	/* The client has read nothing yet: its socket takes a line whole. */
	if (sock_write(c->fd, line, (size_t)n) != n) {
		conn_reset(m, c);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->deadline_ms = 0;
	m->stats.host_connects++;
}

static void guest_rst(struct vsock_mux *m, struct vsock_conn *c)
{
	if (c->state == CONN_CONNECTING)
		m->stats.refused++; /* nothing listens there: the client's socket closes */
	conn_free(m, c);
}

static void guest_shutdown(struct vsock_mux *m, struct vsock_conn *c, const struct vsock_hdr *h)
{
	if (h->flags & ~(uint32_t)VSOCK_SHUTDOWN_BOTH || c->state == CONN_CONNECTING) {
		m->stats.bad_packets++;
		conn_reset(m, c);
	} else if (c->state == CONN_CLOSING) {
		conn_reset(m, c); /* it answered our SHUTDOWN with its own: it gets the RST */
	} else if (c->state == CONN_ESTABLISHED) {
		c->guest_shut |= h->flags;
		guest_shut_progress(m, c);
	}
}

/* Packets for a known connection. */
static void guest_conn(struct vsock_mux *m, struct vsock_conn *c, const struct vsock_hdr *h,
		       const uint8_t *payload)
{
	/* Every header carries the sender's credit. */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE: guest_response(m, c); break;
	case VSOCK_OP_RST: guest_rst(m, c); break;
	case VSOCK_OP_SHUTDOWN: guest_shutdown(m, c, h); break;
	case VSOCK_OP_RW: guest_rw(m, c, h, payload); break;
	case VSOCK_OP_CREDIT_UPDATE: break;
	case VSOCK_OP_CREDIT_REQUEST:
		if (c->state == CONN_ESTABLISHED)
			c->pending |= PEND_CREDIT;
		break;
	default: /* REQUEST handled by the caller; anything else is not an op */
		m->stats.bad_packets++;
		conn_reset(m, c);
	}
}

/* From the guest, to the host: the source may be its CID before the last change (still queued). */
static bool addressed_to_us(const struct vsock_mux *m, const struct vsock_hdr *h)
{
	return h->dst_cid == VSOCK_HOST_CID &&
	       (h->src_cid == m->cid || (m->stale_cid && h->src_cid == m->stale_cid));
}

void vsock_mux_guest(struct vsock_mux *m, const struct vsock_hdr *h, const uint8_t *payload,
		     int64_t now_ms)
{
	struct vsock_conn *c;

	if (!addressed_to_us(m, h)) {
		m->stats.bad_packets++; /* no reply: it names someone else */
		return;
	}
	c = conn_find(m, h->dst_port, h->src_port);
	if (h->type != VSOCK_TYPE_STREAM || (h->len && h->op != VSOCK_OP_RW)) {
		m->stats.bad_packets++;
		if (c)
			conn_reset(m, c);
		else
			queue_rst(m, h);
	} else if (h->op == VSOCK_OP_REQUEST) {
		guest_request(m, h);
	} else if (c) {
		guest_conn(m, c, h, payload);
	} else {
		if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST)
			m->stats.bad_packets++;
		queue_rst(m, h); /* a connection we do not have */
	}
}

/* ---- host clients ---- */

/* A host port no connection to guest_port uses. */
static uint32_t new_host_port(struct vsock_mux *m, uint32_t guest_port)
{
	uint32_t port;

	do {
		port = m->next_port++;
		if (m->next_port == UINT32_MAX)
			m->next_port = VSOCK_HOST_PORT_FIRST;
	} while (conn_find(m, port, guest_port));
	return port;
}

/* "CONNECT <port>" (a '\r' before the '\n' allowed): 0 with *port, or -EINVAL. */
static int parse_cmd(const char *cmd, uint32_t *port)
{
	unsigned long v;
	char *end;

	if (strncmp(cmd, "CONNECT ", 8) || cmd[8] < '0' || cmd[8] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(cmd + 8, &end, 10);
	if (errno || v > UINT32_MAX || (*end && strcmp(end, "\r")))
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

static void start_connect(struct vsock_mux *m, struct vsock_conn *c, int64_t now_ms)
{
	uint32_t port;

	c->cmd[c->cmd_len] = '\0';
	if (parse_cmd(c->cmd, &port) < 0) {
		m->stats.refused++;
		conn_free(m, c);
		return;
	}
	c->guest_port = port;
	c->host_port = new_host_port(m, port);
	c->state = CONN_CONNECTING;
	c->pending = PEND_REQUEST;
	c->deadline_ms = now_ms + VSOCK_CONNECT_TIMEOUT_MS;
}

/* Read the command a byte at a time, so that no byte meant for the guest is taken with it. */
static void read_cmd(struct vsock_mux *m, struct vsock_conn *c, int64_t now_ms)
{
	char ch;
	ssize_t n;

	while ((n = sock_read(c->fd, &ch, 1)) == 1) {
		if (ch == '\n') {
			start_connect(m, c, now_ms);
			return;
		}
		if (c->cmd_len + 1 >= VSOCK_CMD_MAX) {
			m->stats.refused++;
			conn_free(m, c);
			return;
		}
		c->cmd[c->cmd_len++] = ch;
	}
	if (n != -EAGAIN)
		conn_free(m, c); /* EOF or an error before a whole command */
}

int vsock_mux_accept(struct vsock_mux *m, int listen_fd, int64_t now_ms)
{
	struct vsock_conn *c;
	int fd;

	if (vsock_mux_full(m))
		return 0;
	fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return 0;
		/* EMFILE and the like: stop accepting until a connection goes (no busy loop). */
		m->accept_blocked = true;
		return -errno;
	}
	c = conn_new(m);
	c->state = CONN_CMD;
	c->fd = fd;
	c->deadline_ms = now_ms + VSOCK_CMD_TIMEOUT_MS;
	return 1;
}

/* The client closed both ways and all it sent went to the guest: tell the guest, await its RST. */
static void client_gone(struct vsock_mux *m, struct vsock_conn *c, int64_t now_ms)
{
	conn_close_fd(c);
	if ((c->guest_shut & VSOCK_SHUTDOWN_BOTH) == VSOCK_SHUTDOWN_BOTH) {
		c->state = CONN_RESET;
		return;
	}
	c->state = CONN_CLOSING;
	c->shut_want = VSOCK_SHUTDOWN_BOTH;
	c->deadline_ms = now_ms + VSOCK_CLOSE_TIMEOUT_MS;
}

/*
 * The client hung up (reported whatever the events asked, so the device
 * takes the fd out of its epoll). What it sent before still goes to the
 * guest, which read to EOF finds; bytes for it are dropped.
 */
static void client_hup(struct vsock_mux *m, struct vsock_conn *c, int64_t now_ms)
{
	c->hup = c->readable = true;
	free(c->backlog);
	c->backlog = NULL;
	c->fwd_cnt += c->back_len;
	c->back_off = c->back_len = 0;
	if (c->host_eof || (c->guest_shut & VSOCK_SHUTDOWN_RCV))
		client_gone(m, c, now_ms);
}

void vsock_mux_io(struct vsock_mux *m, unsigned slot, uint32_t gen, uint32_t events, int64_t now_ms)
{
	struct vsock_conn *c = slot < VSOCK_MAX_CONNS ? &m->conns[slot] : NULL;

	if (!c || c->gen != gen || c->state == CONN_FREE || c->fd < 0)
		return; /* an event of a connection already gone */
	if (events & EPOLLERR) {
		conn_reset(m, c);
	} else if (c->state == CONN_CMD) {
		read_cmd(m, c, now_ms);
		if (c->state == CONN_CMD && (events & EPOLLHUP))
			conn_free(m, c);
	} else if (c->state == CONN_CONNECTING) {
		if (events & EPOLLHUP)
			conn_reset(m, c); /* the client left before the guest answered */
	} else if (c->state == CONN_ESTABLISHED) {
		if (events & EPOLLIN)
			c->readable = true;
		if ((events & EPOLLOUT) && flush(c) < 0)
			conn_reset(m, c);
		else if (events & EPOLLOUT)
			guest_shut_progress(m, c);
		if (c->state == CONN_ESTABLISHED && (events & EPOLLHUP))
			client_hup(m, c, now_ms);
	}
}

/* ---- packets for the guest ---- */

static void fill(const struct vsock_mux *m, struct vsock_conn *c, struct vsock_hdr *h, uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = m->cid, .src_port = c->host_port,
		.dst_port = c->guest_port, .type = VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = VSOCK_CONN_BUF, .fwd_cnt = c->fwd_cnt,
	};
	c->sent_fwd_cnt = c->fwd_cnt;
	c->pending &= (uint8_t)~PEND_CREDIT; /* every packet tells the credit */
}

static bool control_packet(struct vsock_mux *m, struct vsock_conn *c, struct vsock_hdr *h)
{
	if (c->pending & PEND_RESPONSE) {
		c->pending &= (uint8_t)~PEND_RESPONSE;
		fill(m, c, h, VSOCK_OP_RESPONSE);
	} else if (c->shut_want & ~c->shut_sent) {
		fill(m, c, h, VSOCK_OP_SHUTDOWN);
		h->flags = c->shut_sent = c->shut_want;
	} else if (c->pending & PEND_CREDIT) {
		fill(m, c, h, VSOCK_OP_CREDIT_UPDATE);
	} else {
		return false;
	}
	return true;
}

/* The client's EOF: a SHUTDOWN(SEND) for the guest, or both ways when it also hung up. */
static void host_eof(struct vsock_mux *m, struct vsock_conn *c, struct vsock_hdr *h, int64_t now_ms)
{
	c->host_eof = true;
	c->readable = false;
	if (c->hup)
		client_gone(m, c, now_ms);
	else
		c->shut_want |= VSOCK_SHUTDOWN_SEND;
	if (c->state == CONN_RESET) {
		fill(m, c, h, VSOCK_OP_RST);
		conn_free(m, c);
		return;
	}
	fill(m, c, h, VSOCK_OP_SHUTDOWN);
	h->flags = c->shut_sent = c->shut_want;
}

static bool data_packet(struct vsock_mux *m, struct vsock_conn *c, struct vsock_hdr *h,
			uint8_t *payload, uint32_t room, int64_t now_ms)
{
	uint32_t max = peer_credit(c);
	ssize_t n;

	max = max < room ? max : room;
	max = max < VSOCK_MAX_PKT ? max : VSOCK_MAX_PKT;
	if (!c->readable || !can_send(c) || !max)
		return false;
	n = sock_read(c->fd, payload, max);
	if (n == -EAGAIN) {
		c->readable = false;
		return false;
	}
	if (n > 0) {
		fill(m, c, h, VSOCK_OP_RW);
		h->len = (uint32_t)n;
		c->tx_cnt += (uint32_t)n;
	} else if (n == 0) {
		host_eof(m, c, h, now_ms);
	} else {
		conn_reset(m, c);
		fill(m, c, h, VSOCK_OP_RST);
		conn_free(m, c);
	}
	return true;
}

static bool conn_produce(struct vsock_mux *m, struct vsock_conn *c, struct vsock_hdr *h,
			 uint8_t *payload, uint32_t room, int64_t now_ms)
{
	switch (c->state) {
	case CONN_RESET:
		fill(m, c, h, VSOCK_OP_RST);
		conn_free(m, c);
		return true;
	case CONN_CONNECTING:
		if (!(c->pending & PEND_REQUEST) || m->hold_requests)
			return false;
		c->pending &= (uint8_t)~PEND_REQUEST;
		fill(m, c, h, VSOCK_OP_REQUEST);
		return true;
	case CONN_ESTABLISHED:
	case CONN_CLOSING:
		return control_packet(m, c, h) || data_packet(m, c, h, payload, room, now_ms);
	default:
		return false;
	}
}

bool vsock_mux_produce(struct vsock_mux *m, struct vsock_hdr *h, uint8_t *payload, uint32_t room,
		       int64_t now_ms)
{
	if (m->rst_len) {
		*h = (struct vsock_hdr){
			.src_cid = VSOCK_HOST_CID, .dst_cid = m->cid,
			.src_port = m->rst[m->rst_head].host_port,
			.dst_port = m->rst[m->rst_head].guest_port,
			.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
		};
		m->rst_head = (m->rst_head + 1) % VSOCK_RST_QUEUE;
		m->rst_len--;
		return true;
	}
	/* Round-robin, so that one busy connection cannot keep the others' bytes waiting. */
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		unsigned slot = (m->next + i) % VSOCK_MAX_CONNS;

		if (conn_produce(m, &m->conns[slot], h, payload, room, now_ms)) {
			m->next = (slot + 1) % VSOCK_MAX_CONNS;
			return true;
		}
	}
	return false;
}

/* ---- deadlines ---- */

static void expire(struct vsock_mux *m, struct vsock_conn *c)
{
	m->stats.timeouts++;
	if (c->state == CONN_CMD)
		conn_free(m, c);
	else
		conn_reset(m, c); /* no answer to our REQUEST or SHUTDOWN: the guest gets an RST */
}

int64_t vsock_mux_expire(struct vsock_mux *m, int64_t now_ms)
{
	int64_t next = -1;

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &m->conns[i];

		if (c->state == CONN_FREE || !c->deadline_ms)
			continue;
		if (now_ms >= c->deadline_ms)
			expire(m, c);
		else if (next < 0 || c->deadline_ms < next)
			next = c->deadline_ms;
	}
	return next;
}
