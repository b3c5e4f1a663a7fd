/*
 * virtio-vsock's connections (devices/vsock_conn.c) without a transport:
 * packets as the guest would send them, host clients and host services on
 * real Unix sockets in a temporary folder, the credit both ways, and a
 * hostile guest's garbage.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock_conn.h"

#define CID 3
#define NOW 1000

static struct vsock_mux mux;
static char dir[64];
static int listen_fd;
static uint8_t payload[VSOCK_MAX_PKT];

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 128) == 0);
	return fd;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void setup(void)
{
	char path[128];

	signal(SIGPIPE, SIG_IGN);
	strcpy(dir, "/tmp/vm-fork-vsock-XXXXXX");
	cr_assert(mkdtemp(dir));
	vsock_mux_init(&mux, CID);
	snprintf(mux.path, sizeof(mux.path), "%s/v.sock", dir);
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	listen_fd = unix_listen(path);
}

static void teardown(void)
{
	char cmd[128];

	vsock_mux_reset(&mux);
	close(listen_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

#define T(name, ...) Test(vsock, name, .init = setup, .fini = teardown, ##__VA_ARGS__)

/* A packet from the guest. */
static void guest(uint16_t op, uint32_t src_port, uint32_t dst_port, const void *data, uint32_t len,
		  uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = src_port, .dst_port = dst_port,
		.len = len, .type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};

	vsock_mux_guest(&mux, &h, data, NOW);
}

static void guest_shut(uint32_t src_port, uint32_t dst_port, uint32_t flags)
{
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = src_port, .dst_port = dst_port,
		.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_SHUTDOWN, .flags = flags, .buf_alloc = 4096,
	};

	vsock_mux_guest(&mux, &h, NULL, NOW);
}

/* The next packet for the guest, with room bytes of buffer; asserts there is one. */
static struct vsock_hdr produce(uint32_t room)
{
	struct vsock_hdr h;

	cr_assert(vsock_mux_produce(&mux, &h, payload, room, NOW), "nothing for the guest");
	cr_assert_eq(h.src_cid, VSOCK_HOST_CID);
	cr_assert_eq(h.dst_cid, CID);
	cr_assert_eq(h.type, VSOCK_TYPE_STREAM);
	return h;
}

static bool nothing(void)
{
	struct vsock_hdr h;

	return !vsock_mux_produce(&mux, &h, payload, 4096, NOW);
}

static int slot_of(uint32_t host_port, uint32_t guest_port)
{
	for (int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (mux.conns[i].state != CONN_FREE && mux.conns[i].host_port == host_port &&
		    mux.conns[i].guest_port == guest_port)
			return i;
	return -1;
}

/* Socket events for a connection, as the device's epoll would report them. */
static void io(int slot, uint32_t events)
{
	vsock_mux_io(&mux, (unsigned)slot, mux.conns[slot].gen, events, NOW);
}

static int client_slot(void)
{
	for (int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (mux.conns[i].state == CONN_CMD)
			return i;
	return -1;
}

/* A host client asks for guest port; the REQUEST the guest gets. */
static struct vsock_hdr host_connect(int *client, uint32_t port)
{
	char cmd[32];
	struct vsock_hdr h;
	int slot;

	*client = unix_connect(mux.path);
	snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);
	cr_assert_eq(write(*client, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	cr_assert_eq(vsock_mux_accept(&mux, listen_fd, NOW), 1);
	slot = client_slot();
	cr_assert(slot >= 0);
	io(slot, EPOLLIN);
	cr_assert_eq(mux.conns[slot].state, CONN_CONNECTING);
	h = produce(4096);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	cr_assert_eq(h.dst_port, port);
	cr_assert_geq(h.src_port, 1u << 30);
	return h;
}

/* ... and the guest's listener takes it with a buffer of buf_alloc. */
static int established(int *client, uint32_t port, uint32_t buf_alloc)
{
	struct vsock_hdr req = host_connect(client, port);
	char line[32] = { 0 }, want[32];

	guest(VSOCK_OP_RESPONSE, port, req.src_port, NULL, 0, buf_alloc, 0);
	snprintf(want, sizeof(want), "OK %u\n", req.src_port);
	cr_assert_eq(read(*client, line, strlen(want)), (ssize_t)strlen(want));
	cr_assert_str_eq(line, want);
	return slot_of(req.src_port, port);
}

T(header_is_little_endian_44_bytes)
{
	struct vsock_hdr h = { 0x0102030405060708ULL, 2, 0x11223344, 5, 6, 1, 5, 3, 0x10000, 77 }, back;
	uint8_t raw[VSOCK_HDR_SIZE];

	vsock_hdr_encode(&h, raw);
	cr_expect_eq(raw[0], 0x08);
	cr_expect_eq(raw[7], 0x01);
	cr_expect_eq(raw[16], 0x44, "src_port at 16");
	cr_expect_eq(raw[28], 1, "type at 28");
	cr_expect_eq(raw[30], 5, "op at 30");
	cr_expect_eq(raw[38], 1, "buf_alloc at 36");
	cr_expect_eq(raw[40], 77, "fwd_cnt at 40");
	vsock_hdr_decode(raw, &back);
	cr_expect(back.src_cid == h.src_cid && back.dst_cid == h.dst_cid &&
		  back.src_port == h.src_port && back.dst_port == h.dst_port && back.len == h.len &&
		  back.type == h.type && back.op == h.op && back.flags == h.flags &&
		  back.buf_alloc == h.buf_alloc && back.fwd_cnt == h.fwd_cnt, "decode(encode(h)) != h");
}

T(host_client_reaches_guest_port_both_ways)
{
	int client, slot = established(&client, 1234, 65536);
	struct vsock_hdr h;
	char buf[16] = { 0 };

	cr_assert(slot >= 0);
	cr_expect_eq(mux.stats.host_connects, 1);
	cr_assert_eq(write(client, "ping", 4), 4);
	io(slot, EPOLLIN);
	h = produce(4096);
	cr_expect_eq(h.op, VSOCK_OP_RW);
	cr_expect_eq(h.len, 4);
	cr_expect_arr_eq(payload, "ping", 4);
	cr_expect(nothing(), "the socket is empty: no packet, and no spin");
	guest(VSOCK_OP_RW, 1234, h.src_port, "pong", 4, 65536, 4);
	cr_expect_eq(read(client, buf, 4), 4);
	cr_expect_str_eq(buf, "pong");
	close(client);
	io(slot, EPOLLIN | EPOLLHUP);
	h = produce(4096);
	cr_expect_eq(h.op, VSOCK_OP_SHUTDOWN);
	cr_expect_eq(h.flags, VSOCK_SHUTDOWN_BOTH, "a client gone both ways");
	guest(VSOCK_OP_RST, 1234, h.src_port, NULL, 0, 0, 0);
	cr_expect_eq(slot_of(h.src_port, 1234), -1, "freed on the guest's RST");
}

T(bytes_after_the_command_are_not_lost)
{
	int client = unix_connect(mux.path), slot;
	struct vsock_hdr req, h;

	cr_assert_eq(write(client, "CONNECT 7\nearly", 15), 15);
	cr_assert_eq(vsock_mux_accept(&mux, listen_fd, NOW), 1);
	slot = client_slot();
	io(slot, EPOLLIN);
	req = produce(4096);
	guest(VSOCK_OP_RESPONSE, 7, req.src_port, NULL, 0, 4096, 0);
	io(slot, EPOLLIN);
	h = produce(4096);
	cr_assert_eq(h.op, VSOCK_OP_RW);
	cr_expect_eq(h.len, 5);
	cr_expect_arr_eq(payload, "early", 5);
	close(client);
}

T(refused_connection_closes_the_client)
{
	int client;
	struct vsock_hdr req = host_connect(&client, 99);
	char c;

	guest(VSOCK_OP_RST, 99, req.src_port, NULL, 0, 0, 0);
	cr_expect_eq(read(client, &c, 1), 0, "EOF for a refused client");
	cr_expect_eq(mux.stats.refused, 1);
	close(client);
}

T(bad_commands_close_the_client)
{
	const char *bad[] = { "connect 5\n", "CONNECT\n", "CONNECT -1\n", "CONNECT 99999999999\n",
			      "CONNECT 5x\n", "CONNECT 01234567890123456789012345\n" };
	char c;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int client = unix_connect(mux.path);

		cr_assert_eq(write(client, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		cr_assert_eq(vsock_mux_accept(&mux, listen_fd, NOW), 1);
		io(client_slot(), EPOLLIN);
		/* EOF, or ECONNRESET when the dropped command was not all read */
		cr_expect_leq(read(client, &c, 1), 0, "%s kept", bad[i]);
		cr_expect(nothing());
		close(client);
	}
}

T(silent_clients_and_mute_guests_time_out)
{
	int quiet, waiting;
	char c;

	host_connect(&waiting, 80);
	quiet = unix_connect(mux.path);
	cr_assert_eq(vsock_mux_accept(&mux, listen_fd, NOW), 1);
	cr_expect_eq(vsock_mux_expire(&mux, NOW), NOW + VSOCK_CMD_TIMEOUT_MS);
	vsock_mux_expire(&mux, NOW + VSOCK_CMD_TIMEOUT_MS);
	cr_expect_eq(read(quiet, &c, 1), 0, "a client that never said CONNECT is dropped");
	vsock_mux_expire(&mux, NOW + VSOCK_CONNECT_TIMEOUT_MS);
	cr_expect_eq(read(waiting, &c, 1), 0, "a REQUEST never answered is given up");
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "and the guest is told");
	cr_expect_eq(mux.stats.timeouts, 2);
	cr_expect_eq(vsock_mux_expire(&mux, NOW + VSOCK_CONNECT_TIMEOUT_MS), -1);
	close(quiet);
	close(waiting);
}

/* The guest's credit bounds what is read from the socket: nothing queues on the host. */
T(host_to_guest_respects_guest_credit)
{
	int client, slot = established(&client, 1234, 1000);
	static char big[100000];
	uint32_t total = 0, port = mux.conns[slot].host_port;
	struct vsock_hdr h;

	fcntl(client, F_SETFL, O_NONBLOCK);
	cr_assert_eq(write(client, big, sizeof(big)), (ssize_t)sizeof(big));
	io(slot, EPOLLIN);
	while (vsock_mux_produce(&mux, &h, payload, 300, NOW)) {
		cr_assert_eq(h.op, VSOCK_OP_RW);
		cr_assert_leq(h.len, 300, "bounded by the buffer");
		total += h.len;
	}
	cr_expect_eq(total, 1000, "exactly the guest's buf_alloc");
	cr_expect_eq(vsock_conn_events(&mux.conns[slot]) & EPOLLIN, 0, "no wake-ups without credit");
	guest(VSOCK_OP_CREDIT_UPDATE, 1234, port, NULL, 0, 1000, 600);
	while (vsock_mux_produce(&mux, &h, payload, 4096, NOW))
		total += h.len;
	cr_expect_eq(total, 1600, "600 more after the guest consumed 600");
	guest(VSOCK_OP_CREDIT_UPDATE, 1234, port, NULL, 0, 500, 600);
	cr_expect(nothing(), "a shrunk buffer below what is in flight gives no credit");
	guest(VSOCK_OP_CREDIT_UPDATE, 1234, port, NULL, 0, 1000, 5000);
	cr_expect(nothing(), "nor nonsense (fwd_cnt ahead of what was sent)");
	close(client);
}

static int host_service(uint32_t port)
{
	char path[128];

	snprintf(path, sizeof(path), "%s_%u", mux.path, port);
	return unix_listen(path);
}

T(guest_reaches_host_socket_path_port)
{
	int svc = host_service(5000), peer;
	struct vsock_hdr h;
	char buf[16] = { 0 };

	guest(VSOCK_OP_REQUEST, 777, 5000, NULL, 0, 4096, 0);
	h = produce(4096);
	cr_assert_eq(h.op, VSOCK_OP_RESPONSE);
	cr_expect_eq(h.src_port, 5000);
	cr_expect_eq(h.dst_port, 777);
	cr_expect_eq(h.buf_alloc, VSOCK_CONN_BUF);
	peer = accept(svc, NULL, NULL);
	cr_assert(peer >= 0);
	guest(VSOCK_OP_RW, 777, 5000, "hello", 5, 4096, 0);
	cr_expect_eq(read(peer, buf, 5), 5);
	cr_expect_str_eq(buf, "hello");
	cr_assert_eq(write(peer, "world", 5), 5);
	io(slot_of(5000, 777), EPOLLIN);
	h = produce(4096);
	cr_expect_eq(h.op, VSOCK_OP_RW);
	cr_expect_arr_eq(payload, "world", 5);
	guest_shut(777, 5000, VSOCK_SHUTDOWN_BOTH);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "Linux waits for this RST after its close");
	cr_expect_eq(read(peer, buf, 1), 0, "the service sees EOF");
	cr_expect_eq(mux.stats.guest_connects, 1);
	close(peer);
	close(svc);
}

T(guest_connection_to_nothing_is_reset)
{
	struct vsock_hdr h;

	guest(VSOCK_OP_REQUEST, 778, 5001, NULL, 0, 4096, 0);
	h = produce(4096);
	cr_expect_eq(h.op, VSOCK_OP_RST);
	cr_expect_eq(h.src_port, 5001);
	cr_expect_eq(h.dst_port, 778);
	cr_expect_eq(mux.stats.refused, 1);
	mux.path[0] = '\0';
	guest(VSOCK_OP_REQUEST, 779, 5001, NULL, 0, 4096, 0);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "no socket path yet (a shell): refused too");
}

T(guest_half_close_gives_the_client_eof)
{
	int svc = host_service(6000), peer;
	char c;

	guest(VSOCK_OP_REQUEST, 900, 6000, NULL, 0, 4096, 0);
	cr_assert_eq(produce(4096).op, VSOCK_OP_RESPONSE);
	peer = accept(svc, NULL, NULL);
	guest(VSOCK_OP_RW, 900, 6000, "x", 1, 4096, 0);
	guest_shut(900, 6000, VSOCK_SHUTDOWN_SEND);
	cr_expect_eq(read(peer, &c, 1), 1);
	cr_expect_eq(read(peer, &c, 1), 0, "EOF after the guest's last byte");
	cr_assert_eq(write(peer, "y", 1), 1, "the other way still open");
	io(slot_of(6000, 900), EPOLLIN);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RW);
	guest(VSOCK_OP_RW, 900, 6000, "z", 1, 4096, 1);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "data after SHUTDOWN(SEND) resets");
	cr_expect_eq(mux.stats.bad_packets, 1);
	close(peer);
	close(svc);
}

/* A service that does not read: the guest may fill our buffer, never more. */
T(guest_beyond_credit_is_reset_and_memory_stays_bounded)
{
	int svc = host_service(6001), peer, slot, small = 4096;
	static uint8_t chunk[VSOCK_MAX_PKT];
	uint32_t sent = 0;

	guest(VSOCK_OP_REQUEST, 901, 6001, NULL, 0, 4096, 0);
	cr_assert_eq(produce(4096).op, VSOCK_OP_RESPONSE);
	peer = accept(svc, NULL, NULL);
	slot = slot_of(6001, 901);
	setsockopt(mux.conns[slot].fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (int i = 0; i < 64 && mux.conns[slot].state == CONN_ESTABLISHED; i++) {
		guest(VSOCK_OP_RW, 901, 6001, chunk, sizeof(chunk), 4096, 0);
		sent += sizeof(chunk);
		cr_assert_leq(mux.conns[slot].back_len, VSOCK_CONN_BUF, "the backlog past the credit");
	}
	cr_expect_eq(mux.stats.credit_violations, 1, "after %u bytes", sent);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST);
	cr_expect_eq(slot_of(6001, 901), -1);
	close(peer);
	close(svc);
}

T(credit_update_follows_the_service_reading)
{
	int svc = host_service(6002), peer, slot, small = 4096;
	static uint8_t chunk[VSOCK_MAX_PKT], sink[VSOCK_MAX_PKT];
	struct vsock_hdr h;
	uint32_t sent = 0;
	ssize_t n;

	guest(VSOCK_OP_REQUEST, 902, 6002, NULL, 0, 4096, 0);
	cr_assert_eq(produce(4096).op, VSOCK_OP_RESPONSE);
	peer = accept(svc, NULL, NULL);
	slot = slot_of(6002, 902);
	setsockopt(mux.conns[slot].fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	/* A well-behaved guest: exactly the credit it was given (VSOCK_CONN_BUF, fwd_cnt 0). */
	while (sent + sizeof(chunk) <= VSOCK_CONN_BUF) {
		guest(VSOCK_OP_RW, 902, 6002, chunk, sizeof(chunk), 4096, 0);
		sent += sizeof(chunk);
	}
	cr_assert_gt(mux.conns[slot].back_len, 0, "the service is behind");
	cr_expect(vsock_conn_events(&mux.conns[slot]) & EPOLLOUT);
	fcntl(peer, F_SETFL, O_NONBLOCK);
	while ((n = read(peer, sink, sizeof(sink))) > 0 || mux.conns[slot].back_len) {
		io(slot, EPOLLOUT);
	}
	cr_expect_eq(mux.conns[slot].back_len, 0);
	h = produce(4096);
	cr_expect_eq(h.op, VSOCK_OP_CREDIT_UPDATE);
	cr_expect_eq(h.fwd_cnt, sent, "all of it forwarded");
	cr_expect_eq(h.buf_alloc, VSOCK_CONN_BUF);
	cr_expect(nothing());
	guest(VSOCK_OP_CREDIT_REQUEST, 902, 6002, NULL, 0, 4096, 0);
	cr_expect_eq(produce(4096).op, VSOCK_OP_CREDIT_UPDATE, "asked for");
	close(peer);
	close(svc);
}

T(connection_table_is_bounded)
{
	int svc = host_service(7000);

	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		guest(VSOCK_OP_REQUEST, 1000 + i, 7000, NULL, 0, 4096, 0);
		cr_assert_eq(produce(4096).op, VSOCK_OP_RESPONSE, "connection %u", i);
	}
	cr_expect(vsock_mux_full(&mux));
	guest(VSOCK_OP_REQUEST, 2000, 7000, NULL, 0, 4096, 0);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "the 65th is refused");
	cr_expect_eq(vsock_mux_accept(&mux, listen_fd, NOW), 0, "host clients wait in the backlog");
	guest(VSOCK_OP_RST, 1000, 7000, NULL, 0, 0, 0);
	cr_expect(!vsock_mux_full(&mux));
	close(svc);
}

T(garbage_is_counted_dropped_or_reset)
{
	struct vsock_hdr h = { .src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = 1, .dst_port = 2,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW };

	h.dst_cid = 7;
	vsock_mux_guest(&mux, &h, payload, NOW);
	h.dst_cid = VSOCK_HOST_CID;
	h.src_cid = 99;
	vsock_mux_guest(&mux, &h, payload, NOW);
	cr_expect(nothing(), "not addressed from this guest to the host: no answer");
	cr_expect_eq(mux.stats.bad_packets, 2);
	h.src_cid = CID;
	h.type = 2;
	vsock_mux_guest(&mux, &h, payload, NOW);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "SEQPACKET is not offered");
	h.type = VSOCK_TYPE_STREAM;
	h.op = 42;
	vsock_mux_guest(&mux, &h, payload, NOW);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "no such op");
	h.op = VSOCK_OP_RW;
	h.len = 3;
	vsock_mux_guest(&mux, &h, payload, NOW);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "RW on no connection");
	h.op = VSOCK_OP_REQUEST;
	vsock_mux_guest(&mux, &h, payload, NOW);
	cr_expect_eq(produce(4096).op, VSOCK_OP_RST, "a REQUEST with a payload");
	h.op = VSOCK_OP_RST;
	h.len = 0;
	vsock_mux_guest(&mux, &h, payload, NOW);
	cr_expect(nothing(), "an RST is never answered");
	cr_expect_eq(mux.stats.bad_packets, 5);
}

T(rst_replies_are_bounded)
{
	for (unsigned i = 0; i < 1000; i++)
		guest(VSOCK_OP_RW, i, 5, "a", 1, 0, 0);
	cr_expect_eq(mux.stats.rst_dropped, 1000 - VSOCK_RST_QUEUE);
	for (unsigned i = 0; i < VSOCK_RST_QUEUE; i++)
		cr_expect_eq(produce(4096).op, VSOCK_OP_RST);
	cr_expect(nothing());
}

/* Random headers from a hostile guest, with connections open: never a crash, always bounded. */
T(random_headers)
{
	int svc = host_service(8), client, open_slot = established(&client, 8, 4096);
	struct vsock_hdr h;

	srand(1);
	cr_assert(open_slot >= 0);
	for (unsigned i = 0; i < 20000; i++) {
		h = (struct vsock_hdr){
			.src_cid = rand() % 8 ? CID : (uint64_t)rand(),
			.dst_cid = rand() % 8 ? VSOCK_HOST_CID : (uint64_t)rand(),
			.src_port = (uint32_t)(rand() % 4), .dst_port = (uint32_t)(rand() % 10),
			.len = rand() % 2 ? 0 : (uint32_t)(rand() % 100), .type = (uint16_t)(rand() % 3),
			.op = (uint16_t)(rand() % 9), .flags = (uint32_t)(rand() % 5),
			.buf_alloc = (uint32_t)rand(), .fwd_cnt = (uint32_t)rand(),
		};
		vsock_mux_guest(&mux, &h, payload, NOW);
		if (rand() % 2)
			vsock_mux_produce(&mux, &h, payload, (uint32_t)(rand() % 5000), NOW);
		for (unsigned s = 0; s < VSOCK_MAX_CONNS; s++)
			cr_assert_leq(mux.conns[s].back_len, VSOCK_CONN_BUF);
		cr_assert_leq(mux.rst_len, VSOCK_RST_QUEUE);
	}
	while (vsock_mux_produce(&mux, &h, payload, 4096, NOW))
		;
	close(client);
	close(svc);
}

T(reset_closes_every_host_socket_at_once)
{
	int client, slot = established(&client, 1234, 4096);
	char c;

	cr_assert(slot >= 0);
	vsock_mux_reset(&mux);
	cr_expect_eq(read(client, &c, 1), 0, "the client sees the connection end");
	cr_expect(nothing(), "the guest is owed nothing: it gets a TRANSPORT_RESET instead");
	cr_expect(!vsock_mux_full(&mux));
	close(client);
}
