/*
 * virtio-vsock's connections (devices/virtio_vsock.h), apart from the
 * transport: the table of connections between the guest's ports and host
 * Unix sockets, the virtio-vsock stream protocol and its credit accounting.
 * The device feeds it what the guest sent (vsock_mux_guest()) and asks it
 * for what to send into each receive buffer it has (vsock_mux_produce());
 * host sockets are read only when a guest buffer and the guest's credit can
 * take the bytes, so nothing queues for a slow guest, and bytes from the
 * guest wait here only within the credit this side gave (VSOCK_CONN_BUF per
 * connection, VSOCK_MAX_CONNS connections).
 *
 * Not thread-safe: the device calls it under the transport's lock. Socket
 * writes may raise SIGPIPE: the caller's thread blocks it (the sandbox of a
 * clone worker has no send(MSG_NOSIGNAL)).
 */
#ifndef DEVICES_VSOCK_CONN_H
#define DEVICES_VSOCK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_vsock.h"

/* The protocol (virtio 1.2, 5.10). */
#define VSOCK_HOST_CID      2
#define VSOCK_HDR_SIZE      44
#define VSOCK_TYPE_STREAM   1
#define VSOCK_MAX_PKT       (64u * 1024) /* payload bytes of one packet, as Linux sends at most */
enum {
	VSOCK_OP_INVALID, VSOCK_OP_REQUEST, VSOCK_OP_RESPONSE, VSOCK_OP_RST, VSOCK_OP_SHUTDOWN,
	VSOCK_OP_RW, VSOCK_OP_CREDIT_UPDATE, VSOCK_OP_CREDIT_REQUEST,
};
#define VSOCK_SHUTDOWN_RCV  1 /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2 /* the sender will send no more */
#define VSOCK_SHUTDOWN_BOTH 3
#define VSOCK_EVENT_TRANSPORT_RESET 0

/* A packet header in host order; on the wire, 44 bytes little-endian. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE]);

/* Limits: what one VM's vsock may hold on the host. */
#define VSOCK_MAX_CONNS     64
#define VSOCK_CONN_BUF      (128u * 1024) /* the credit given to the guest per connection */
#define VSOCK_RST_QUEUE     32            /* RSTs owed for packets of no connection */
#define VSOCK_CMD_MAX       32            /* "CONNECT <port>\n" */
#define VSOCK_CMD_TIMEOUT_MS      10000   /* a host client that says nothing */
#define VSOCK_CONNECT_TIMEOUT_MS  30000   /* a guest that does not answer a REQUEST (slow under TCG) */
#define VSOCK_CLOSE_TIMEOUT_MS    10000   /* a guest that does not answer our SHUTDOWN */
/* Host ports for host clients: far above the ports services listen on. */
#define VSOCK_HOST_PORT_FIRST     (1u << 30)
#define VSOCK_PATH_MAX      108           /* sizeof(sun_path) */

enum vsock_conn_state {
	CONN_FREE,
	CONN_CMD,          /* a host client: reading its CONNECT line */
	CONN_CONNECTING,   /* REQUEST owed or sent to the guest, awaiting RESPONSE */
	CONN_ESTABLISHED,
	CONN_CLOSING,      /* host side closed, SHUTDOWN sent: awaiting the guest's RST */
	CONN_RESET,        /* host side closed: an RST is owed, then the slot is free */
};

/* What a connection owes the guest, sent as receive buffers come. */
#define PEND_REQUEST  1
#define PEND_RESPONSE 2
#define PEND_CREDIT   4

struct vsock_conn {
	enum vsock_conn_state state;
	int fd;                   /* the host socket, -1 once closed */
	uint32_t gen;             /* bumped as the slot is reused: tags its epoll events */
	uint32_t host_port, guest_port;
	bool in_epoll;            /* the device added fd to its epoll ... */
	uint32_t registered;      /* ... with these events */
	bool readable;            /* epoll said the socket has bytes; cleared on EAGAIN */
	bool host_eof;            /* the client sent EOF */
	bool hup;                 /* the client hung up: read to EOF, then close (out of epoll) */
	uint8_t pending;          /* PEND_* */
	uint32_t shut_want, shut_sent; /* SHUTDOWN flags to send / sent to the guest */
	uint32_t guest_shut;      /* SHUTDOWN flags the guest sent */
	bool half_closed;         /* shutdown(SHUT_WR) done on fd */
	/* host to guest: the guest's credit */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* guest to host: the credit this side gives */
	uint32_t rx_cnt, fwd_cnt, sent_fwd_cnt;
	uint8_t *backlog;         /* bytes the socket did not take yet (rx_cnt - fwd_cnt of them) */
	uint32_t back_off, back_len;
	int64_t deadline_ms;      /* 0: none */
	char cmd[VSOCK_CMD_MAX];
	unsigned cmd_len;
};

struct vsock_mux {
	uint64_t cid;             /* the guest's */
	uint64_t stale_cid;       /* its CID before a reset, accepted as a source until it took the reset */
	char path[VSOCK_PATH_MAX];/* this VM's socket: PATH_<port> for the guest's connections */
	bool hold_requests;       /* a transport reset not yet taken: host connections wait */
	bool accept_blocked;      /* accept failed (EMFILE...): none until a connection goes */
	struct vsock_conn conns[VSOCK_MAX_CONNS];
	unsigned next;            /* where the round-robin over connections resumes */
	uint32_t next_port;       /* the next host port for a host client, from VSOCK_HOST_PORT_FIRST */
	struct { uint32_t host_port, guest_port; } rst[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_len;
	struct vsock_stats stats;
};

/* Whether this thread runs in a clone worker's seccomp sandbox (fork/sandbox.c). */
bool vsock_sandboxed(void);

void vsock_mux_init(struct vsock_mux *m, uint64_t cid);
/* Close every connection at once, owing the guest nothing (a transport reset, destroy). */
void vsock_mux_reset(struct vsock_mux *m);
bool vsock_mux_full(const struct vsock_mux *m);
/* Take a host client from the listener: 1, 0 when none waits, or -errno. */
int vsock_mux_accept(struct vsock_mux *m, int listen_fd, int64_t now_ms);
/* Socket events (EPOLL*) for conns[slot] while its gen was gen (stale events are ignored). */
void vsock_mux_io(struct vsock_mux *m, unsigned slot, uint32_t gen, uint32_t events, int64_t now_ms);
/*
 * A packet the guest sent: its header and h->len payload bytes (the device
 * checked that the buffer held them and that len <= VSOCK_MAX_PKT).
 */
void vsock_mux_guest(struct vsock_mux *m, const struct vsock_hdr *h, const uint8_t *payload,
		     int64_t now_ms);
/*
 * The next packet for the guest, for a receive buffer with room payload
 * bytes: true with *h and h->len bytes of payload filled, false when there
 * is nothing to send.
 */
bool vsock_mux_produce(struct vsock_mux *m, struct vsock_hdr *h, uint8_t *payload, uint32_t room,
		       int64_t now_ms);
/* Give up on connections past their deadline; the next deadline, or -1. */
int64_t vsock_mux_expire(struct vsock_mux *m, int64_t now_ms);
/* The epoll events conns[slot] wants now. */
uint32_t vsock_conn_events(const struct vsock_conn *c);

#endif
