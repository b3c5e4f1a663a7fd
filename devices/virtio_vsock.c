/*
 * virtio-vsock (devices/virtio_vsock.h): the transport's backend, the
 * device's life (configure, attach, forked, save and restore), and its I/O
 * thread. The connections themselves are devices/vsock_conn.c's.
 *
 * Locking: everything but the fields set before the thread starts is under
 * the transport's lock, which the vCPU threads hold in the backend callbacks
 * and the I/O thread takes around each round of work. Queue notifications
 * only mark the queue and kick the thread, so a vCPU never does socket I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

#include "core/log.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock_conn.h"

enum { RXQ, TXQ, EVQ, NQUEUES };

#define QUEUE_SIZE 128
#define CONFIG_SIZE 8         /* guest_cid, le64 */
#define MAX_EVENTS 32
/* epoll tags beside the connections' (slot | gen << 32) */
#define TAG_LISTEN VSOCK_MAX_CONNS
#define TAG_KICK   (VSOCK_MAX_CONNS + 1)
/* CIDs a guest may have: 0-2 are reserved, and Linux keeps CIDs in 32 bits with -1 for "any". */
#define CID_MIN 3ULL
#define CID_MAX 0xfffffffeULL

struct virtio_vsock {
	struct virtio_mmio *t;
	struct device_host host;
	/* Set by configure() and attach(), before the thread runs. */
	bool on;
	char tmpl[VSOCK_PATH_MAX];     /* the argument's PATH, maybe with %u */
	uint64_t base_cid;
	bool listening;                /* mux.path is ours to unlink */
	int listen_fd, epoll_fd, kick_fd;
	bool thread_on;
	pthread_t thread;
	/* Under the transport's lock. */
	struct vsock_mux mux;
	bool running;                  /* the vCPUs run: the thread may touch guest RAM */
	bool stopping;
	unsigned kicked;               /* queues notified since the thread looked (bits) */
	bool event_owed;               /* a TRANSPORT_RESET to deliver ... */
	bool event_sent;               /* ... delivered, not yet taken (the driver refills the queue) */
	uint32_t listen_events;        /* registered for listen_fd */
	struct vq_chain chain;
	uint8_t pkt[VSOCK_HDR_SIZE + VSOCK_MAX_PKT];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kick(struct virtio_vsock *v)
{
	uint64_t one = 1;

	if (v->kick_fd >= 0 && write(v->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("virtio-vsock: kick: %s", strerror(errno));
}

/* ---- the backend, called under the lock on vCPU threads ---- */

static void config_read(void *be, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_vsock *v = be;
	uint8_t cid[CONFIG_SIZE];

	for (unsigned i = 0; i < CONFIG_SIZE; i++)
		cid[i] = (uint8_t)(v->mux.cid >> (8 * i));
	memcpy(data, cid + off, len);
}

static void notify(void *be, unsigned queue)
{
	struct virtio_vsock *v = be;

	v->kicked |= 1u << queue;
	kick(v);
}

/* No reset is owed once the guest has none to take. */
static void forget_reset(struct virtio_vsock *v)
{
	v->event_owed = v->event_sent = false;
	v->mux.hold_requests = false;
}

/* The driver reset the device: its sockets are gone with the queues, so are ours. */
static void driver_reset(void *be)
{
	struct virtio_vsock *v = be;

	vsock_mux_reset(&v->mux);
	forget_reset(v);
	v->kicked = 0;
}

static const struct virtio_backend vsock_backend = {
	.name = "virtio-vsock", .device_id = VIRTIO_VSOCK_ID, .nqueues = NQUEUES,
	.queue_max = QUEUE_SIZE, .config_size = CONFIG_SIZE, .config_read = config_read,
	.notify = notify, .reset = driver_reset,
};

/* ---- the queues, on the I/O thread under the lock while the VM runs ---- */

/* The next good chain of q: 1, 0 for none, -EIO when the ring broke (the device asks for a reset). */
static int pop(struct virtio_vsock *v, struct virtqueue *q)
{
	int got;

	while ((got = vq_pop(q, &v->chain)) == -EBADMSG)
		;
	if (got == -EIO)
		virtio_mmio_needs_reset(v->t);
	return got;
}

static int push(struct virtio_vsock *v, struct virtqueue *q, uint32_t len)
{
	int ret = vq_push(q, v->chain.head, len);

	if (ret < 0)
		virtio_mmio_needs_reset(v->t);
	return ret;
}

/* One packet the guest sent: the header and payload checked against the buffer. */
static void tx_packet(struct virtio_vsock *v, struct virtqueue *q, int64_t now)
{
	const struct vq_chain *c = &v->chain;
	struct vsock_hdr h;

	if (c->readable < VSOCK_HDR_SIZE ||
	    vq_read(q, c, 0, v->pkt, VSOCK_HDR_SIZE) != VSOCK_HDR_SIZE) {
		v->mux.stats.bad_chains++;
		return;
	}
	vsock_hdr_decode(v->pkt, &h);
	if (h.len > VSOCK_MAX_PKT || h.len > c->readable - VSOCK_HDR_SIZE ||
	    vq_read(q, c, VSOCK_HDR_SIZE, v->pkt + VSOCK_HDR_SIZE, h.len) != h.len) {
		v->mux.stats.bad_packets++;
		return;
	}
	vsock_mux_guest(&v->mux, &h, v->pkt + VSOCK_HDR_SIZE, now);
}

static void drain_tx(struct virtio_vsock *v, int64_t now)
{
	struct virtqueue *q = virtio_mmio_live_queue(v->t, TXQ);

	while (q && pop(v, q) > 0) {
		tx_packet(v, q, now);
		if (push(v, q, 0) < 0)
			return;
	}
}

/* Fill receive buffers while there is something to send. */
static void fill_rx(struct virtio_vsock *v, int64_t now)
{
	struct virtqueue *q = virtio_mmio_live_queue(v->t, RXQ);
	const struct vq_chain *c = &v->chain;
	struct vsock_hdr h;
	uint32_t room, len;

	while (q && pop(v, q) > 0) {
		if (c->readable || c->writable < VSOCK_HDR_SIZE) {
			v->mux.stats.bad_chains++;
			if (push(v, q, 0) < 0)
				return;
			continue;
		}
		room = c->writable - VSOCK_HDR_SIZE > VSOCK_MAX_PKT ? VSOCK_MAX_PKT
								    : (uint32_t)(c->writable - VSOCK_HDR_SIZE);
		if (!vsock_mux_produce(&v->mux, &h, v->pkt + VSOCK_HDR_SIZE, room, now)) {
			vq_unpop(q);
			return;
		}
		vsock_hdr_encode(&h, v->pkt);
		len = VSOCK_HDR_SIZE + h.len;
		if (vq_write(q, c, 0, v->pkt, len) != len || push(v, q, len) < 0)
			return;
	}
}

/*
 * TRANSPORT_RESET: the guest drops its connections and reads its CID again.
 * Host clients' REQUESTs wait until the driver has taken it (it refills the
 * event queue and notifies after handling), so that none reaches the guest
 * before its CID is the new one, nor is reset with the old connections.
 */
static void deliver_event(struct virtio_vsock *v)
{
	struct virtqueue *q = virtio_mmio_live_queue(v->t, EVQ);
	const uint8_t reset[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };

	while (v->event_owed && q && pop(v, q) > 0) {
		if (v->chain.readable || v->chain.writable < sizeof(reset)) {
			v->mux.stats.bad_chains++;
			if (push(v, q, 0) < 0)
				return;
			continue;
		}
		vq_write(q, &v->chain, 0, reset, sizeof(reset));
		if (push(v, q, sizeof(reset)) < 0)
			return;
		v->event_owed = false;
		v->event_sent = true;
		v->mux.stats.transport_resets++;
	}
}

/* ---- the I/O thread ---- */

static void handle_event(struct virtio_vsock *v, const struct epoll_event *e, int64_t now)
{
	uint64_t tag = e->data.u64, drain;
	int ret;

	if (tag == TAG_KICK) {
		while (read(v->kick_fd, &drain, sizeof(drain)) > 0)
			;
	} else if (tag == TAG_LISTEN) {
		while ((ret = vsock_mux_accept(&v->mux, v->listen_fd, now)) > 0)
			;
		if (ret < 0)
			pr_warn("virtio-vsock: %s: accept: %s", v->mux.path, strerror(-ret));
	} else {
		vsock_mux_io(&v->mux, (unsigned)(tag & 0xffffffffu), (uint32_t)(tag >> 32), e->events, now);
	}
}

static void epoll_set(struct virtio_vsock *v, int fd, int op, uint32_t events, uint64_t tag)
{
	struct epoll_event e = { .events = events, .data.u64 = tag };

	if (epoll_ctl(v->epoll_fd, op, fd, op == EPOLL_CTL_DEL ? NULL : &e) < 0)
		pr_debug("virtio-vsock: epoll_ctl(%d, fd %d): %s", op, fd, strerror(errno));
}

/* Register what each socket waits for now: level-triggered, so never more than can be served. */
static void sync_epoll(struct virtio_vsock *v)
{
	uint32_t want = vsock_mux_full(&v->mux) ? 0 : EPOLLIN;

	if (want != v->listen_events)
		epoll_set(v, v->listen_fd, EPOLL_CTL_MOD, want, TAG_LISTEN);
	v->listen_events = want;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->mux.conns[i];
		uint64_t tag = i | (uint64_t)c->gen << 32;

		want = vsock_conn_events(c);
		if (c->fd < 0) {
			continue;
		} else if (c->hup) { /* reported whatever we ask: out of the epoll */
			if (c->in_epoll)
				epoll_set(v, c->fd, EPOLL_CTL_DEL, 0, tag);
			c->in_epoll = false;
		} else if (!c->in_epoll || c->registered != want) {
			epoll_set(v, c->fd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, want, tag);
			c->in_epoll = true;
			c->registered = want;
		}
	}
}

/* One round: sockets, the guest's packets, its reset event, packets for it. Its next timeout. */
static int serve(struct virtio_vsock *v, const struct epoll_event *ev, int n)
{
	int64_t now = now_ms(), next;
	unsigned kicked = v->kicked;

	v->kicked = 0;
	for (int i = 0; i < n; i++)
		handle_event(v, &ev[i], now);
	if (kicked & (1u << TXQ))
		drain_tx(v, now);
	if ((kicked & (1u << EVQ)) && v->event_sent)
		forget_reset(v);
	next = vsock_mux_expire(&v->mux, now);
	deliver_event(v);
	v->mux.hold_requests = v->event_owed || v->event_sent;
	fill_rx(v, now);
	for (unsigned q = 0; q < NQUEUES; q++)
		virtio_mmio_used(v->t, q);
	sync_epoll(v);
	if (next < 0)
		return -1;
	return next - now > 60000 ? 60000 : (int)(next - now) + 1;
}

/* While the VM is paused: wait for the kick that says it runs again (or stops). */
static void wait_kick(struct virtio_vsock *v)
{
	struct pollfd p = { .fd = v->kick_fd, .events = POLLIN };
	uint64_t drain;

	if (poll(&p, 1, -1) > 0)
		while (read(v->kick_fd, &drain, sizeof(drain)) > 0)
			;
}

static void *io_thread(void *arg)
{
	struct virtio_vsock *v = arg;
	struct epoll_event ev[MAX_EVENTS];
	sigset_t pipe;
	int n = 0, timeout;

	/* A write to a socket whose client left fails with EPIPE instead of killing the VMM. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	for (;;) {
		virtio_mmio_lock(v->t);
		if (v->stopping) {
			virtio_mmio_unlock(v->t);
			return NULL;
		}
		if (!v->running) {
			virtio_mmio_unlock(v->t);
			wait_kick(v);
			continue;
		}
		timeout = serve(v, ev, n);
		virtio_mmio_unlock(v->t);
		n = epoll_wait(v->epoll_fd, ev, MAX_EVENTS, timeout);
		n = n < 0 ? 0 : n;
	}
}

/* ---- opening ---- */

/* PATH for clone id: %u replaced; without one, "PATH.clone-<id>" for a clone, PATH for id 0. */
static int expand_path(const char *tmpl, uint64_t id, char *out, size_t size)
{
	const char *pct = strstr(tmpl, "%u");
	int n;

	if (pct)
		n = snprintf(out, size, "%.*s%llu%s", (int)(pct - tmpl), tmpl, (unsigned long long)id,
			     pct + 2);
	else if (id)
		n = snprintf(out, size, "%s.clone-%llu", tmpl, (unsigned long long)id);
	else
		n = snprintf(out, size, "%s", tmpl);
	/* Room for "_4294967295", the guest's connections' sockets. */
	return n < 0 || (size_t)n + 11 >= size ? -ENAMETOOLONG : 0;
}

/* A socket file a VMM that is gone left behind is removed; anything else at path is refused. */
static int clear_path(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, live;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno != ECONNREFUSED;
	close(fd);
	if (live)
		return -EADDRINUSE;
	return unlink(sa->sun_path) < 0 ? -errno : 0;
}

static int open_listener(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = clear_path(&sa);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The thread and the fds; the socket file too, unless the sandbox forbids unlink (it dies with the worker). */
static void detach(struct virtio_vsock *v)
{
	if (v->thread_on) {
		virtio_mmio_lock(v->t);
		v->stopping = true;
		virtio_mmio_unlock(v->t);
		kick(v);
		pthread_join(v->thread, NULL);
		v->thread_on = false;
	}
	vsock_mux_reset(&v->mux);
	close_fd(&v->listen_fd);
	close_fd(&v->epoll_fd);
	close_fd(&v->kick_fd);
	if (v->listening && !vsock_sandboxed())
		unlink(v->mux.path);
	v->listening = false;
}

static int start(struct virtio_vsock *v)
{
	int ret;

	v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	v->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->epoll_fd < 0 || v->kick_fd < 0)
		return -errno;
	epoll_set(v, v->listen_fd, EPOLL_CTL_ADD, EPOLLIN, TAG_LISTEN);
	epoll_set(v, v->kick_fd, EPOLL_CTL_ADD, EPOLLIN, TAG_KICK);
	v->listen_events = EPOLLIN;
	ret = -pthread_create(&v->thread, NULL, io_thread, v);
	v->thread_on = !ret;
	return ret;
}

static int dev_attach(void *dev)
{
	struct virtio_vsock *v = dev;
	char path[VSOCK_PATH_MAX];
	int ret;

	if (!v->on || v->thread_on)
		return 0;
	ret = expand_path(v->tmpl, v->host.vm_id ? v->host.vm_id(v->host.opaque) : 0, path,
			  sizeof(path));
	if (!ret)
		ret = v->listen_fd = open_listener(path);
	if (ret < 0) {
		pr_err("virtio-vsock: cannot listen on %s: %s", path, strerror(-ret));
		return ret;
	}
	virtio_mmio_lock(v->t);
	snprintf(v->mux.path, sizeof(v->mux.path), "%s", path);
	virtio_mmio_unlock(v->t);
	v->listening = true;
	ret = start(v);
	if (ret < 0) {
		pr_err("virtio-vsock: cannot start its I/O thread: %s", strerror(-ret));
		detach(v);
	}
	return ret;
}

/* ---- the device table ---- */

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	v->host = *host;
	v->listen_fd = v->epoll_fd = v->kick_fd = -1;
	vsock_mux_init(&v->mux, VIRTIO_VSOCK_DEFAULT_CID);
	ret = virtio_mmio_create(&v->t, bus, host, VIRTIO_VSOCK_SLOT, &vsock_backend, v);
	if (ret < 0) {
		free(v);
		return ret;
	}
	*out = v;
	return 0;
}

static int parse_cid(const char *s, uint64_t *cid)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(s, &end, 0);
	if (*s < '0' || *s > '9' || errno || *end || n < CID_MIN || n > CID_MAX)
		return -EINVAL;
	*cid = n;
	return 0;
}

/* PATH[,cid=N] into tmpl (VSOCK_PATH_MAX bytes) and *cid: 0 or -errno, logged. */
static int parse_arg(const char *arg, char *tmpl, uint64_t *cid)
{
	const char *comma = strrchr(arg, ',');
	size_t len = comma && !strncmp(comma, ",cid=", 5) ? (size_t)(comma - arg) : strlen(arg);
	char probe[VSOCK_PATH_MAX];

	*cid = VIRTIO_VSOCK_DEFAULT_CID;
	if (len != strlen(arg) && parse_cid(comma + 5, cid) < 0) {
		pr_err("--vsock %s: cid= takes a number from 3 to %llu", arg, CID_MAX);
		return -EINVAL;
	}
	if (!len || len >= VSOCK_PATH_MAX) {
		pr_err("--vsock: a socket path of 1 to %d bytes, then ,cid=N if wanted",
		       VSOCK_PATH_MAX - 1);
		return -EINVAL;
	}
	memcpy(tmpl, arg, len);
	tmpl[len] = '\0';
	if (expand_path(tmpl, UINT32_MAX, probe, sizeof(probe)) < 0) {
		pr_err("--vsock %s: too long for a Unix socket with a clone id and a port", tmpl);
		return -ENAMETOOLONG;
	}
	return 0;
}

int virtio_vsock_path_of(const char *arg, uint64_t id, char *out, size_t size)
{
	char tmpl[VSOCK_PATH_MAX];
	uint64_t cid;
	int ret = parse_arg(arg, tmpl, &cid);

	return ret < 0 ? ret : expand_path(tmpl, id, out, size);
}

/* PATH[,cid=N]: kept, not opened (configure() also runs in warm shells; attach() listens). */
static int dev_configure(void *dev, const char *arg)
{
	struct virtio_vsock *v = dev;
	uint64_t cid;
	int ret = parse_arg(arg, v->tmpl, &cid);

	if (ret < 0)
		return ret;
	v->base_cid = cid;
	v->on = true;
	virtio_mmio_lock(v->t);
	v->mux.cid = cid;
	virtio_mmio_unlock(v->t);
	virtio_mmio_set_present(v->t, true);
	return 0;
}

/* Under the lock: a new CID; the old one stays accepted as a source for what was queued. */
static void set_cid(struct virtio_vsock *v, uint64_t cid)
{
	if (cid == v->mux.cid)
		return;
	v->mux.stale_cid = v->mux.cid;
	v->mux.cid = cid;
	virtio_mmio_config_changed(v->t);
}

/* Clone id's CID: base + id, kept within the CIDs Linux takes (wrapping past 2^32 - 2). */
static uint64_t clone_cid(uint64_t base, uint64_t id)
{
	return CID_MIN + (base - CID_MIN + id % (CID_MAX - CID_MIN + 1)) % (CID_MAX - CID_MIN + 1);
}

/*
 * The clone's own CID (Firecracker #3344 asks the same of a restored VM):
 * the guest reads it at the TRANSPORT_RESET that restore() made owed, so a
 * guest server can tell which clone it is, and the host can tell clones
 * apart by the peer CID a guest client sees.
 */
static int dev_forked(void *dev)
{
	struct virtio_vsock *v = dev;

	if (!v->on)
		return 0;
	virtio_mmio_lock(v->t);
	set_cid(v, clone_cid(v->base_cid, v->host.vm_id ? v->host.vm_id(v->host.opaque) : 0));
	virtio_mmio_unlock(v->t);
	return 0;
}

/*
 * A clone's own PATH[,cid=N] (a fork request's), after forked(): the CID rule
 * stays, now from this argument's base. Only before attach() listens.
 */
static int dev_rebind(void *dev, const char *arg)
{
	struct virtio_vsock *v = dev;
	char tmpl[VSOCK_PATH_MAX];
	uint64_t cid, guest_cid;
	int ret;

	if (!v->on || v->thread_on)
		return -EINVAL;
	ret = parse_arg(arg, tmpl, &cid);
	if (ret < 0)
		return ret;
	memcpy(v->tmpl, tmpl, sizeof(tmpl));
	v->base_cid = cid;
	virtio_mmio_lock(v->t);
	/* The stale CID stays the one the guest last read (forked() may have changed it once). */
	guest_cid = v->mux.stale_cid ? v->mux.stale_cid : v->mux.cid;
	set_cid(v, clone_cid(cid, v->host.vm_id ? v->host.vm_id(v->host.opaque) : 0));
	v->mux.stale_cid = guest_cid == v->mux.cid ? 0 : guest_cid;
	virtio_mmio_unlock(v->t);
	return 0;
}

static void dev_set_running(void *dev, bool running)
{
	struct virtio_vsock *v = dev;

	virtio_mmio_lock(v->t);
	v->running = running;
	virtio_mmio_unlock(v->t);
	kick(v);
}

static void dev_destroy(void *dev)
{
	struct virtio_vsock *v = dev;

	if (!v)
		return;
	detach(v);
	virtio_mmio_destroy(v->t);
	free(v);
}

static void dev_save(void *dev, void *state)
{
	struct virtio_vsock *v = dev;
	struct virtio_vsock_state *st = state;

	memset(st, 0, sizeof(*st));
	virtio_mmio_save(v->t, &st->transport);
	virtio_mmio_lock(v->t);
	st->guest_cid = v->mux.cid;
	st->next_host_port = v->mux.next_port;
	virtio_mmio_unlock(v->t);
}

static int dev_check(const void *state)
{
	const struct virtio_vsock_state *st = state;

	/* 0: a state made without the device's save (synthetic ones): its argument's CID. */
	if (st->guest_cid && (st->guest_cid < CID_MIN || st->guest_cid > CID_MAX))
		return -EINVAL;
	if (st->next_host_port && (st->next_host_port < VSOCK_HOST_PORT_FIRST ||
				   st->next_host_port == UINT32_MAX))
		return -EINVAL;
	return virtio_mmio_check_state(&st->transport, &vsock_backend);
}

/*
 * A snapshot, a clone's state or a reset point: the host connections are of
 * another time, so they close, and a guest whose driver runs is owed a
 * TRANSPORT_RESET to drop its own (its listeners stay).
 */
static int dev_restore(void *dev, const void *state)
{
	const struct virtio_vsock_state *st = state;
	struct virtio_vsock *v = dev;

	virtio_mmio_restore(v->t, &st->transport);
	virtio_mmio_lock(v->t);
	vsock_mux_reset(&v->mux);
	v->mux.cid = st->guest_cid ? st->guest_cid : v->base_cid ? v->base_cid : VIRTIO_VSOCK_DEFAULT_CID;
	v->mux.stale_cid = 0;
	if (st->next_host_port >= VSOCK_HOST_PORT_FIRST)
		v->mux.next_port = st->next_host_port;
	v->kicked = 0;
	forget_reset(v);
	v->event_owed = st->transport.status & VIRTIO_STATUS_DRIVER_OK;
	v->mux.hold_requests = v->event_owed;
	virtio_mmio_unlock(v->t);
	kick(v);
	return 0;
}

static int dev_describe(void *dev, struct aml *dsdt)
{
	return virtio_mmio_describe(((struct virtio_vsock *)dev)->t, dsdt);
}

void virtio_vsock_stats(void *dev, struct vsock_stats *s)
{
	struct virtio_vsock *v = dev;

	virtio_mmio_lock(v->t);
	*s = v->mux.stats;
	virtio_mmio_unlock(v->t);
}

const char *virtio_vsock_path(void *dev)
{
	return ((struct virtio_vsock *)dev)->mux.path;
}

const struct device_type virtio_vsock_device = {
	.name = "virtio-vsock", .option = "vsock", .state_size = sizeof(struct virtio_vsock_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore, .describe = dev_describe,
	.forked = dev_forked, .attach = dev_attach, .rebind = dev_rebind,
	.set_running = dev_set_running,
};

_Static_assert(sizeof(struct virtio_vsock_state) <= DEVICE_STATE_MAX, "virtio-vsock state too big");
