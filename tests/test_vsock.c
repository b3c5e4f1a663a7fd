/*
 * virtio-vsock as a guest driver and a host see it, without KVM: the device
 * (devices/virtio_vsock.c) behind its transport on a bus, guest RAM made
 * in-process, a driver written here (three queues, buffers posted, packets
 * built in RAM), and host clients on the Unix socket; its I/O thread runs.
 * A second instance loaded from the first's state is a clone: its own
 * socket and CID, a TRANSPORT_RESET, none of the parent's connections,
 * while the parent's go on. Then hostile chains, and no fd left behind.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/process_stats.h"
#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_conn.h"

enum {
	DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM = 0x038,
	QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050, STATUS = 0x070, DESC_LO = 0x080,
	AVAIL_LO = 0x090, USED_LO = 0x0a0, DEVICE_ID = 0x008, CONFIG = 0x100,
};
enum { RXQ, TXQ, EVQ };

#define QSIZE 16
#define RING(q)   (0x10000ULL + 0x4000ULL * (q)) /* desc, then avail at +0x1000, used at +0x2000 */
#define BUF(q, i) (0x100000ULL + 0x100000ULL * (q) + 0x11000ULL * (i))
#define RX_BUF    (VSOCK_HDR_SIZE + 4096)
#define WAIT_MS   5000

/* One VM: its RAM, its bus, the device, and the driver's view of its queues. */
struct vm {
	struct guest_mem mem;
	struct bus bus;
	struct device_host host;
	void *dev;
	uint64_t id;
	uint16_t avail[3], seen[3];
};

static struct vm parent, clone;
static char dir[64];

static uint64_t vm_id(void *opaque)
{
	return ((struct vm *)opaque)->id;
}

static void no_irq(void *opaque, unsigned gsi, int level)
{
}

static uint32_t rd(struct vm *vm, uint64_t reg)
{
	uint32_t v = 0;
	uint64_t base = LAYOUT_VIRTIO_MMIO + VIRTIO_VSOCK_SLOT * VIRTIO_MMIO_SLOT_SIZE;

	cr_assert(bus_access(&vm->bus, BUS_MMIO, base + reg, (uint8_t *)&v, 4, false));
	return v;
}

static void wr(struct vm *vm, uint64_t reg, uint32_t v)
{
	uint64_t base = LAYOUT_VIRTIO_MMIO + VIRTIO_VSOCK_SLOT * VIRTIO_MMIO_SLOT_SIZE;

	cr_assert(bus_access(&vm->bus, BUS_MMIO, base + reg, (uint8_t *)&v, 4, true));
}

static void make_vm(struct vm *vm, uint64_t id, const char *arg)
{
	memset(vm, 0, sizeof(*vm));
	vm->id = id;
	cr_assert_eq(guest_mem_create(&vm->mem, 16 * MiB, NULL), 0);
	bus_init(&vm->bus);
	vm->host = (struct device_host){ .set_irq = no_irq, .vm_id = vm_id, .mem = &vm->mem,
					 .opaque = vm };
	cr_assert_eq(virtio_vsock_device.create(&vm->dev, &vm->bus, &vm->host), 0);
	cr_assert_eq(virtio_vsock_device.configure(vm->dev, arg), 0);
}

static void free_vm(struct vm *vm)
{
	if (!vm->dev)
		return;
	virtio_vsock_device.destroy(vm->dev);
	guest_mem_destroy(&vm->mem);
	vm->dev = NULL;
}

static void desc(struct vm *vm, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags)
{
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d = { addr, len, flags, 0 };

	cr_assert_eq(guest_write(&vm->mem, RING(q) + 16ULL * i, &d, sizeof(d)), 0);
}

/* Offer descriptor i on queue q and notify. */
static void offer(struct vm *vm, unsigned q, uint16_t i)
{
	uint16_t idx = ++vm->avail[q];

	guest_write(&vm->mem, RING(q) + 0x1000 + 4 + 2ULL * ((idx - 1) % QSIZE), &i, 2);
	guest_write(&vm->mem, RING(q) + 0x1000 + 2, &idx, 2);
	wr(vm, QUEUE_NOTIFY, q);
}

static void post_rx(struct vm *vm, unsigned i)
{
	desc(vm, RXQ, i, BUF(RXQ, i), RX_BUF, VIRTQ_DESC_F_WRITE);
	offer(vm, RXQ, (uint16_t)i);
}

static void post_event(struct vm *vm, unsigned i)
{
	desc(vm, EVQ, i, BUF(EVQ, i), 4, VIRTQ_DESC_F_WRITE);
	offer(vm, EVQ, (uint16_t)i);
}

/* What Linux's driver does at probe: features, three queues, DRIVER_OK, buffers. */
static void driver_start(struct vm *vm)
{
	wr(vm, STATUS, 0);
	wr(vm, STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	wr(vm, DRV_FEAT_SEL, 1);
	wr(vm, DRV_FEAT, 1);
	wr(vm, STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		wr(vm, QUEUE_SEL, q);
		wr(vm, QUEUE_NUM, QSIZE);
		wr(vm, DESC_LO, (uint32_t)RING(q));
		wr(vm, AVAIL_LO, (uint32_t)(RING(q) + 0x1000));
		wr(vm, USED_LO, (uint32_t)(RING(q) + 0x2000));
		wr(vm, QUEUE_READY, 1);
	}
	wr(vm, STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		       VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 0; i < 8; i++)
		post_rx(vm, i);
	for (unsigned i = 0; i < 4; i++)
		post_event(vm, i);
}

static uint16_t used_idx(struct vm *vm, unsigned q)
{
	uint16_t idx;

	guest_read(&vm->mem, RING(q) + 0x2000 + 2, &idx, 2);
	return idx;
}

/* Wait up to ms for the device to use a buffer of q: its id and length, or false. */
static bool next_used(struct vm *vm, unsigned q, unsigned ms, uint32_t *id, uint32_t *len)
{
	uint32_t e[2];

	for (unsigned t = 0; used_idx(vm, q) == vm->seen[q]; t++) {
		if (t >= ms)
			return false;
		usleep(1000);
	}
	guest_read(&vm->mem, RING(q) + 0x2000 + 4 + 8ULL * (vm->seen[q] % QSIZE), e, sizeof(e));
	vm->seen[q]++;
	*id = e[0];
	*len = e[1];
	return true;
}

/* The next packet the guest receives (its buffer posted again). */
static struct vsock_hdr rx(struct vm *vm, uint8_t *data)
{
	uint8_t raw[RX_BUF];
	struct vsock_hdr h;
	uint32_t id, len;

	cr_assert(next_used(vm, RXQ, WAIT_MS, &id, &len), "no packet for the guest");
	cr_assert_geq(len, VSOCK_HDR_SIZE);
	guest_read(&vm->mem, BUF(RXQ, id), raw, len);
	vsock_hdr_decode(raw, &h);
	cr_assert_eq(len, VSOCK_HDR_SIZE + h.len, "used length and header disagree");
	if (data)
		memcpy(data, raw + VSOCK_HDR_SIZE, h.len);
	post_rx(vm, id);
	return h;
}

static bool rx_quiet(struct vm *vm, unsigned ms)
{
	uint32_t id, len;

	return !next_used(vm, RXQ, ms, &id, &len);
}

/* The guest sends a packet (one readable descriptor) and waits until it was taken. */
static void tx_raw(struct vm *vm, const void *bytes, uint32_t len, uint16_t flags)
{
	uint32_t id, used;

	cr_assert_eq(guest_write(&vm->mem, BUF(TXQ, 0), bytes, len), 0);
	desc(vm, TXQ, 0, BUF(TXQ, 0), len, flags);
	offer(vm, TXQ, 0);
	cr_assert(next_used(vm, TXQ, WAIT_MS, &id, &used), "tx buffer never taken");
}

static void tx(struct vm *vm, uint16_t op, uint32_t src_port, uint32_t dst_port, const char *data,
	       uint32_t flags)
{
	uint8_t raw[VSOCK_HDR_SIZE + 256];
	uint32_t len = data ? (uint32_t)strlen(data) : 0;
	struct vsock_hdr h = {
		.src_cid = rd(vm, CONFIG), .dst_cid = VSOCK_HOST_CID, .src_port = src_port,
		.dst_port = dst_port, .len = len, .type = VSOCK_TYPE_STREAM, .op = op,
		.flags = flags, .buf_alloc = 65536,
	};

	vsock_hdr_encode(&h, raw);
	memcpy(raw + VSOCK_HDR_SIZE, data ? data : "", len);
	tx_raw(vm, raw, VSOCK_HDR_SIZE + len, 0);
}

static int client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s",
		  path, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void expect_read(int fd, const char *want)
{
	char buf[64] = { 0 };
	size_t n = strlen(want), got = 0;
	ssize_t r;

	while (got < n && (r = read(fd, buf + got, n - got)) > 0)
		got += (size_t)r;
	cr_expect_str_eq(buf, want);
}

/* A host client of vm connected to the guest's port 1234: its fd, and the host port in *port. */
static int connect_guest(struct vm *vm, uint32_t *port)
{
	int fd = client(virtio_vsock_path(vm->dev));
	struct vsock_hdr h;
	char ok[32];

	cr_assert_eq(write(fd, "CONNECT 1234\n", 13), 13);
	h = rx(vm, NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	cr_expect_eq(h.dst_port, 1234);
	cr_expect_eq(h.dst_cid, rd(vm, CONFIG), "to the CID the guest reads in its config");
	tx(vm, VSOCK_OP_RESPONSE, 1234, h.src_port, NULL, 0);
	snprintf(ok, sizeof(ok), "OK %u\n", h.src_port);
	expect_read(fd, ok);
	*port = h.src_port;
	return fd;
}

/* Bytes both ways on an established connection. */
static void exchange(struct vm *vm, int fd, uint32_t port, const char *out, const char *back)
{
	uint8_t data[4096];
	struct vsock_hdr h;

	cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
	h = rx(vm, data);
	cr_assert_eq(h.op, VSOCK_OP_RW);
	cr_expect_eq(h.len, strlen(out));
	cr_expect_arr_eq(data, out, strlen(out));
	tx(vm, VSOCK_OP_RW, 1234, port, back, 0);
	expect_read(fd, back);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	strcpy(dir, "/tmp/vm-fork-vsockdev-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	free_vm(&clone);
	free_vm(&parent);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* A booted VM (id 0) with --vsock DIR/v%u.sock, its driver up and the VM running. */
static void boot(void)
{
	char arg[128];

	snprintf(arg, sizeof(arg), "%s/v%%u.sock", dir);
	make_vm(&parent, 0, arg);
	cr_assert_eq(virtio_vsock_device.attach(parent.dev), 0);
	virtio_vsock_device.set_running(parent.dev, true);
	driver_start(&parent);
}

#define T(name, ...) Test(vsock, name, .init = setup, .fini = teardown, ##__VA_ARGS__)

T(device_has_id_19_and_the_cid_in_config)
{
	char path[128];

	boot();
	cr_expect_eq(rd(&parent, DEVICE_ID), VIRTIO_VSOCK_ID);
	cr_expect_eq(rd(&parent, CONFIG), VIRTIO_VSOCK_DEFAULT_CID);
	cr_expect_eq(rd(&parent, CONFIG + 4), 0);
	snprintf(path, sizeof(path), "%s/v0.sock", dir);
	cr_expect_str_eq(virtio_vsock_path(parent.dev), path, "%%u is the VM's id, 0 when booted");
}

T(arguments_are_checked)
{
	void *dev;
	struct bus bus;
	struct device_host host = { .mem = NULL };
	const char *bad[] = { "", ",cid=5", "/tmp/x,cid=2", "/tmp/x,cid=4294967295", "/tmp/x,cid=5z",
			      "/tmp/0123456789012345678901234567890123456789012345678901234567890123"
			      "4567890123456789012345678901234567890" };

	bus_init(&bus);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(virtio_vsock_device.create(&dev, &bus, &host), 0);
		cr_expect_lt(virtio_vsock_device.configure(dev, bad[i]), 0, "'%s' taken", bad[i]);
		virtio_vsock_device.destroy(dev);
		bus_init(&bus);
	}
	cr_assert_eq(virtio_vsock_device.create(&dev, &bus, &host), 0);
	cr_expect_eq(virtio_vsock_device.configure(dev, "/tmp/x,cid=77"), 0);
	virtio_vsock_device.destroy(dev);
}

T(host_connects_to_guest_listener)
{
	uint32_t port;
	struct vsock_hdr h;
	struct vsock_stats s;
	int fd;

	boot();
	fd = connect_guest(&parent, &port);
	exchange(&parent, fd, port, "ping", "pong");
	close(fd);
	h = rx(&parent, NULL);
	cr_expect_eq(h.op, VSOCK_OP_SHUTDOWN);
	tx(&parent, VSOCK_OP_RST, 1234, port, NULL, 0);
	virtio_vsock_stats(parent.dev, &s);
	cr_expect_eq(s.host_connects, 1);
	cr_expect_eq(s.bad_packets + s.bad_chains, 0);
}

T(guest_connects_to_host_path_port)
{
	char path[100];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int svc = socket(AF_UNIX, SOCK_STREAM, 0), peer;
	struct vsock_hdr h;
	uint8_t data[64];

	boot();
	snprintf(path, sizeof(path), "%s_5000", virtio_vsock_path(parent.dev));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(bind(svc, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(svc, 4) == 0);
	tx(&parent, VSOCK_OP_REQUEST, 40000, 5000, NULL, 0);
	h = rx(&parent, NULL);
	cr_assert_eq(h.op, VSOCK_OP_RESPONSE);
	peer = accept(svc, NULL, NULL);
	tx(&parent, VSOCK_OP_RW, 40000, 5000, "hello", 0);
	expect_read(peer, "hello");
	cr_assert_eq(write(peer, "world", 5), 5);
	h = rx(&parent, data);
	cr_expect_eq(h.op, VSOCK_OP_RW);
	cr_expect_arr_eq(data, "world", 5);
	tx(&parent, VSOCK_OP_REQUEST, 40001, 5001, NULL, 0);
	cr_expect_eq(rx(&parent, NULL).op, VSOCK_OP_RST, "nothing listens on PATH_5001");
	close(peer);
	close(svc);
}

/* Nothing moves while the vCPUs are stopped; all of it once they run. */
T(paused_vm_is_not_touched)
{
	uint32_t port;
	uint8_t data[64];
	int fd;

	boot();
	fd = connect_guest(&parent, &port);
	virtio_vsock_device.set_running(parent.dev, false);
	cr_assert_eq(write(fd, "late", 4), 4);
	cr_expect(rx_quiet(&parent, 300), "a packet reached a paused guest");
	virtio_vsock_device.set_running(parent.dev, true);
	cr_expect_eq(rx(&parent, data).op, VSOCK_OP_RW);
	cr_expect_arr_eq(data, "late", 4);
	close(fd);
}

/* A clone as vm_become_clone() makes one: a copy of the RAM, the state, forked(), attach(). */
static void fork_clone(uint64_t id)
{
	uint8_t state[DEVICE_STATE_MAX];
	char arg[128];

	virtio_vsock_device.set_running(parent.dev, false);
	virtio_vsock_device.save(parent.dev, state);
	cr_assert_eq(virtio_vsock_device.check(state), 0);
	snprintf(arg, sizeof(arg), "%s/v%%u.sock", dir);
	make_vm(&clone, id, arg);
	memcpy(clone.mem.host, parent.mem.host, parent.mem.size);
	memcpy(clone.avail, parent.avail, sizeof(clone.avail));
	memcpy(clone.seen, parent.seen, sizeof(clone.seen));
	cr_assert_eq(virtio_vsock_device.restore(clone.dev, state), 0);
	cr_assert_eq(virtio_vsock_device.forked(clone.dev), 0);
	cr_assert_eq(virtio_vsock_device.attach(clone.dev), 0);
	virtio_vsock_device.set_running(clone.dev, true);
	virtio_vsock_device.set_running(parent.dev, true);
}

T(clone_gets_its_own_socket_cid_and_a_transport_reset)
{
	uint32_t port, id, len, event, cport;
	struct vsock_hdr h;
	char path[128];
	int fd, cfd, late;

	boot();
	fd = connect_guest(&parent, &port);
	fork_clone(5);
	snprintf(path, sizeof(path), "%s/v5.sock", dir);
	cr_expect_str_eq(virtio_vsock_path(clone.dev), path);
	cr_expect_eq(rd(&clone, CONFIG), VIRTIO_VSOCK_DEFAULT_CID + 5, "CID 3 + clone id");
	cr_expect_eq(rd(&parent, CONFIG), VIRTIO_VSOCK_DEFAULT_CID, "the parent keeps its CID");
	cr_assert(next_used(&clone, EVQ, WAIT_MS, &id, &len), "no event for the clone");
	guest_read(&clone.mem, BUF(EVQ, id), &event, 4);
	cr_expect_eq(len, 4);
	cr_expect_eq(event, VSOCK_EVENT_TRANSPORT_RESET);
	cr_expect(!next_used(&parent, EVQ, 200, &id, &len), "the parent got an event");

	/* A host client of the clone waits until the guest took the reset (it refills the queue). */
	cfd = client(path);
	cr_assert_eq(write(cfd, "CONNECT 1234\n", 13), 13);
	cr_expect(rx_quiet(&clone, 300), "a REQUEST before the guest took the reset");
	post_event(&clone, id);
	h = rx(&clone, NULL);
	cr_assert_eq(h.op, VSOCK_OP_REQUEST);
	cr_expect_eq(h.dst_cid, VIRTIO_VSOCK_DEFAULT_CID + 5);
	tx(&clone, VSOCK_OP_RST, 1234, h.src_port, NULL, 0); /* no listener (yet): refused */
	cr_expect_leq(read(cfd, path, 1), 0, "a refused client's socket closes");
	close(cfd);

	/* The parent's connection goes on; the clone has none: the guest's bytes for it get an RST. */
	exchange(&parent, fd, port, "still", "here");
	tx(&clone, VSOCK_OP_RW, 1234, port, "lost", 0);
	cr_expect_eq(rx(&clone, NULL).op, VSOCK_OP_RST);
	late = connect_guest(&clone, &cport);
	exchange(&clone, late, cport, "new", "conn");
	close(late);
	close(fd);
}

/* A reset point or a snapshot restored into the same VM: its connections end, the guest is told. */
T(restore_drops_connections)
{
	uint8_t state[DEVICE_STATE_MAX];
	uint32_t port, id, len;
	char c;
	int fd;

	boot();
	fd = connect_guest(&parent, &port);
	virtio_vsock_device.set_running(parent.dev, false);
	virtio_vsock_device.save(parent.dev, state);
	cr_assert_eq(virtio_vsock_device.restore(parent.dev, state), 0);
	virtio_vsock_device.set_running(parent.dev, true);
	cr_expect_leq(read(fd, &c, 1), 0, "the host client's connection ended");
	cr_expect(next_used(&parent, EVQ, WAIT_MS, &id, &len), "no TRANSPORT_RESET");
	close(fd);
}

T(states_are_checked)
{
	struct virtio_vsock_state st;

	boot();
	virtio_vsock_device.save(parent.dev, &st);
	cr_expect_eq(virtio_vsock_device.check(&st), 0);
	st.guest_cid = 2;
	cr_expect_eq(virtio_vsock_device.check(&st), -EINVAL, "the host's CID");
	st.guest_cid = 0xffffffffULL;
	cr_expect_eq(virtio_vsock_device.check(&st), -EINVAL, "VMADDR_CID_ANY");
	st.guest_cid = 1ULL << 40;
	cr_expect_eq(virtio_vsock_device.check(&st), -EINVAL, "beyond 32 bits");
}

/* Chains of the wrong shape and nonsense headers: counted, answered or dropped; the device goes on. */
T(hostile_chains)
{
	uint8_t raw[VSOCK_HDR_SIZE + 16] = { 0 };
	struct vsock_hdr h = { .src_cid = 3, .dst_cid = 2, .src_port = 1, .dst_port = 2, .len = 1000,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW };
	struct vsock_stats s;
	uint32_t port;
	int fd;

	boot();
	tx_raw(&parent, raw, 10, 0);                    /* shorter than a header */
	tx_raw(&parent, raw, sizeof(raw), VIRTQ_DESC_F_WRITE); /* device-writable: nothing to read */
	vsock_hdr_encode(&h, raw);
	tx_raw(&parent, raw, sizeof(raw), 0);           /* len beyond the buffer */
	h.len = 0xffffffffu;
	vsock_hdr_encode(&h, raw);
	tx_raw(&parent, raw, sizeof(raw), 0);
	virtio_vsock_stats(parent.dev, &s);
	cr_expect_eq(s.bad_chains, 2);
	cr_expect_eq(s.bad_packets, 2);
	fd = connect_guest(&parent, &port);
	exchange(&parent, fd, port, "still", "works");
	close(fd);
}

/* Destroy stops the thread and closes everything: the listener, epoll, eventfd, connections. */
T(destroy_leaves_no_fd_and_no_socket_file)
{
	unsigned before = process_open_fds();
	char path[128];
	uint32_t port;
	int fd;

	boot();
	fd = connect_guest(&parent, &port);
	snprintf(path, sizeof(path), "%s", virtio_vsock_path(parent.dev));
	free_vm(&parent);
	cr_expect_eq(access(path, F_OK), -1, "the socket file is gone");
	close(fd);
	cr_expect_eq(process_open_fds(), before);
}
