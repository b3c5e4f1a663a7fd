/* virtio-net on a TAP (devices/virtio_net.h). */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/net_tap.h"
#include "devices/virtio_net.h"

enum { RXQ, TXQ, CTRLQ, NQUEUES };

#define QUEUE_SIZE  256
#define CONFIG_SIZE 8              /* mac[6], status le16 */
#define HDR_SIZE    12             /* virtio_net_hdr_v1: VERSION_1 always has num_buffers */
#define ETH_HDR     14
#define MAX_FRAME   65536          /* a TAP's frame is never longer */
#define BATCH       64             /* frames each way before the lock is let go */
#define NAME_MAX_   IFNAMSIZ       /* the argument's NAME, with "%u" (16 > "%u" + a name) */

#define CTRL_ANNOUNCE     3
#define CTRL_ANNOUNCE_ACK 0
#define CTRL_OK  0
#define CTRL_ERR 1

struct virtio_net {
	struct virtio_mmio *t;
	struct device_host host;
	/* Set by configure(), rebind() and attach(), before the thread runs. */
	bool on;
	char tmpl[NAME_MAX_];          /* the TAP's name, maybe with %u */
	bool own_name;                 /* rebind() named this VM's very TAP, %u or not */
	int tap_fd, kick_fd;
	bool thread_on;
	pthread_t thread;
	/* Under the transport's lock. */
	struct mac_nat mac;
	uint16_t status;
	bool running, stopping;
	bool rx_starved;               /* the TAP has a frame and the guest no buffer for it */
	struct net_stats stats;
	struct vq_chain chain;
	uint8_t frame[HDR_SIZE + MAX_FRAME];
};

static void kick(struct virtio_net *n)
{
	uint64_t one = 1;

	if (n->kick_fd >= 0 && write(n->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("virtio-net: kick: %s", strerror(errno));
}

/* ---- the backend, called under the lock on vCPU threads ---- */

static void config_read(void *be, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = be;
	uint8_t cfg[CONFIG_SIZE];

	memcpy(cfg, n->mac.guest, ETH_ALEN_);
	cfg[6] = (uint8_t)n->status;
	cfg[7] = (uint8_t)(n->status >> 8);
	memcpy(data, cfg + off, len);
}

static uint8_t ctrl_command(struct virtio_net *n, const uint8_t cmd[2])
{
	if (cmd[0] == CTRL_ANNOUNCE && cmd[1] == CTRL_ANNOUNCE_ACK) {
		n->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
		n->stats.announces++;
		return CTRL_OK;
	}
	n->stats.bad_ctrl++;
	return CTRL_ERR;
}

/* Control commands: class and command bytes, their data, then one writable byte for the answer. */
static void serve_ctrl(struct virtio_net *n)
{
	struct virtqueue *q = virtio_mmio_live_queue(n->t, CTRLQ);
	struct vq_chain *c = &n->chain;
	uint8_t cmd[2], ack;
	int got;

	while (q && (got = vq_pop(q, c)) != 0) {
		if (got == -EBADMSG)
			continue;
		if (got < 0)
			break;
		if (c->writable < 1 || vq_read(q, c, 0, cmd, 2) != 2) {
			n->stats.bad_ctrl++;
			ack = CTRL_ERR;
		} else {
			ack = ctrl_command(n, cmd);
		}
		if (vq_push(q, c->head, vq_write(q, c, 0, &ack, c->writable ? 1 : 0) ? 1 : 0) < 0)
			break;
	}
	if (q && q->st.broken)
		virtio_mmio_needs_reset(n->t);
	virtio_mmio_used(n->t, CTRLQ);
}

static void notify(void *be, unsigned queue)
{
	struct virtio_net *n = be;

	if (queue == CTRLQ) {
		serve_ctrl(n);
		return;
	}
	if (queue == RXQ)
		n->rx_starved = false;
	kick(n);
}

static const struct virtio_backend net_backend = {
	.name = "virtio-net", .device_id = VIRTIO_NET_ID, .nqueues = NQUEUES,
	.queue_max = QUEUE_SIZE, .config_size = CONFIG_SIZE, .config_read = config_read,
	.notify = notify,
	.features = VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ |
		    VIRTIO_NET_F_GUEST_ANNOUNCE,
};

/* ---- frames, on the I/O thread under the lock while the VM runs ---- */

/* The next good chain of q: 1, or 0 for none (a broken ring asks the driver for a reset). */
static int pop(struct virtio_net *n, struct virtqueue *q)
{
	int got;

	while ((got = vq_pop(q, &n->chain)) == -EBADMSG)
		;
	if (got == -EIO)
		virtio_mmio_needs_reset(n->t);
	return got > 0;
}

/* One frame the guest sent: its header asks for nothing (no offload was offered). */
static void tx_frame(struct virtio_net *n, struct virtqueue *q)
{
	const struct vq_chain *c = &n->chain;
	size_t len = c->readable < sizeof(n->frame) ? (size_t)c->readable : sizeof(n->frame);

	len = vq_read(q, c, 0, n->frame, len);
	if (len < HDR_SIZE + ETH_HDR || c->readable > sizeof(n->frame) || n->frame[1] /* gso */) {
		n->stats.bad_frames++;
		return;
	}
	mac_nat_outgoing(&n->mac, n->frame + HDR_SIZE, len - HDR_SIZE);
	if (n->tap_fd < 0 || write(n->tap_fd, n->frame + HDR_SIZE, len - HDR_SIZE) < 0)
		n->stats.tx_dropped++;
	else
		n->stats.tx_frames++;
}

/* Up to BATCH frames to the TAP: whether the guest may have more. */
static bool drain_tx(struct virtio_net *n)
{
	struct virtqueue *q = virtio_mmio_live_queue(n->t, TXQ);
	unsigned done = 0;

	while (q && done < BATCH && pop(n, q)) {
		tx_frame(n, q);
		if (vq_push(q, n->chain.head, 0) < 0) {
			virtio_mmio_needs_reset(n->t);
			break;
		}
		done++;
	}
	if (done)
		virtio_mmio_used(n->t, TXQ);
	return done == BATCH;
}

/* One frame from the TAP into the chain just popped: the bytes written, 0 for none waiting. */
static ssize_t rx_frame(struct virtio_net *n, struct virtqueue *q)
{
	const struct vq_chain *c = &n->chain;
	ssize_t got = read(n->tap_fd, n->frame + HDR_SIZE, MAX_FRAME);

	if (got <= 0)
		return 0;
	if ((size_t)got < ETH_HDR || (uint64_t)got + HDR_SIZE > c->writable) {
		n->stats.rx_dropped++;
		return -1;
	}
	memset(n->frame, 0, HDR_SIZE);
	n->frame[10] = 1; /* num_buffers */
	mac_nat_incoming(&n->mac, n->frame + HDR_SIZE, (size_t)got);
	n->stats.rx_frames++;
	return (ssize_t)vq_write(q, c, 0, n->frame, HDR_SIZE + (size_t)got);
}

/* Up to BATCH frames from the TAP: whether there may be more. */
static bool fill_rx(struct virtio_net *n)
{
	struct virtqueue *q = virtio_mmio_live_queue(n->t, RXQ);
	unsigned done = 0;
	ssize_t len = 0;

	while (q && n->tap_fd >= 0 && done < BATCH) {
		if (!pop(n, q)) {
			n->rx_starved = true;
			break;
		}
		len = rx_frame(n, q);
		if (!len) {
			vq_unpop(q);
			break;
		}
		/* A frame too long for its buffer: the buffer goes back empty, which Linux drops. */
		if (vq_push(q, n->chain.head, len < 0 ? 0 : (uint32_t)len) < 0) {
			virtio_mmio_needs_reset(n->t);
			break;
		}
		done++;
	}
	if (done)
		virtio_mmio_used(n->t, RXQ);
	return done == BATCH;
}

static void drain_kick(struct virtio_net *n)
{
	uint64_t drain;

	while (read(n->kick_fd, &drain, sizeof(drain)) > 0)
		;
}

/*
 * Wait for the TAP (when the guest has buffers for it) or a kick; while
 * paused, for a kick alone. No wait when a batch left work behind.
 */
static void wait_work(struct virtio_net *n, bool watch_tap, bool more)
{
	struct pollfd p[2] = { { .fd = n->kick_fd, .events = POLLIN },
			       { .fd = watch_tap ? n->tap_fd : -1, .events = POLLIN } };

	if (poll(p, 2, more ? 0 : -1) > 0 && p[0].revents)
		drain_kick(n);
}

static void *io_thread(void *arg)
{
	struct virtio_net *n = arg;
	sigset_t pipe;
	bool more, watch_tap;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	for (;;) {
		virtio_mmio_lock(n->t);
		if (n->stopping) {
			virtio_mmio_unlock(n->t);
			return NULL;
		}
		more = false;
		if (n->running) {
			more = drain_tx(n);
			more |= fill_rx(n);
		}
		watch_tap = n->running && !n->rx_starved && n->tap_fd >= 0;
		virtio_mmio_unlock(n->t);
		wait_work(n, watch_tap, more);
	}
}

/* ---- the argument and the backend ---- */

/* NAME with clone id in place of its "%u" (or as it is): -ENAMETOOLONG past an interface name. */
static int expand_name(const char *tmpl, uint64_t id, char *out, size_t size)
{
	const char *pct = strstr(tmpl, "%u");
	int len = pct ? snprintf(out, size, "%.*s%llu%s", (int)(pct - tmpl), tmpl,
				 (unsigned long long)id, pct + 2)
		      : snprintf(out, size, "%s", tmpl);

	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

/* tap:NAME[,mac=MAC] into the template and (when given) a MAC. */
static int parse_arg(const char *arg, char *tmpl, size_t size, uint8_t mac[ETH_ALEN_], bool *has_mac)
{
	const char *name = arg + 4, *comma = strchr(name, ',');
	size_t len = comma ? (size_t)(comma - name) : strlen(name);
	char probe[IFNAMSIZ];

	*has_mac = false;
	if (strncmp(arg, "tap:", 4) || !len || len >= size) {
		pr_err("--net %s: give tap:NAME[,mac=MAC], NAME 1 to %zu characters", arg, size - 1);
		return -EINVAL;
	}
	if (comma && (strncmp(comma, ",mac=", 5) || mac_parse(comma + 5, mac) < 0 || (mac[0] & 1))) {
		pr_err("--net %s: mac= takes a unicast MAC, aa:bb:cc:dd:ee:ff", arg);
		return -EINVAL;
	}
	*has_mac = comma != NULL;
	memcpy(tmpl, name, len);
	tmpl[len] = '\0';
	/* A clone whose id makes it longer finds out at attach(). */
	if (expand_name(tmpl, 0, probe, sizeof(probe)) < 0) {
		pr_err("--net %s: a TAP name is at most %d characters with the clone id in place of %%u",
		       arg, IFNAMSIZ - 1);
		return -EINVAL;
	}
	return 0;
}

/* The TAP of clone id; "" for a clone when NAME has no %u and is not its own (no TAP for it). */
static int tap_name(const char *tmpl, bool own, uint64_t id, char *out, size_t size)
{
	*out = '\0';
	if (!strstr(tmpl, "%u") && id && !own)
		return 0;
	if (expand_name(tmpl, id, out, size) == 0)
		return 0;
	pr_err("virtio-net: tap:%s for clone %llu is longer than an interface name (%d)", tmpl,
	       (unsigned long long)id, IFNAMSIZ - 1);
	return -ENAMETOOLONG;
}

static void stop_thread(struct virtio_net *n)
{
	if (!n->thread_on)
		return;
	virtio_mmio_lock(n->t);
	n->stopping = true;
	virtio_mmio_unlock(n->t);
	kick(n);
	pthread_join(n->thread, NULL);
	n->thread_on = false;
}

static uint64_t vm_id(const struct virtio_net *n)
{
	return n->host.vm_id ? n->host.vm_id(n->host.opaque) : 0;
}

/* Without a TAP the link is down, and the guest hears of it. */
static void set_link(struct virtio_net *n, bool up)
{
	uint16_t status = (uint16_t)((n->status & ~VIRTIO_NET_S_LINK_UP) |
				     (up ? VIRTIO_NET_S_LINK_UP : 0));

	if (status != n->status) {
		n->status = status;
		virtio_mmio_config_changed(n->t);
	}
}

static int dev_attach(void *dev)
{
	struct virtio_net *n = dev;
	char name[IFNAMSIZ];
	int ret;

	if (!n->on || n->thread_on)
		return 0;
	ret = tap_name(n->tmpl, n->own_name, vm_id(n), name, sizeof(name));
	if (ret < 0)
		return ret;
	if (!*name)
		pr_warn("virtio-net: clone %llu has no TAP (tap:%s has no %%u): its link is down",
			(unsigned long long)vm_id(n), n->tmpl);
	else if ((n->tap_fd = tap_open(name)) < 0)
		return n->tap_fd;
	n->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->kick_fd < 0)
		return -errno;
	virtio_mmio_lock(n->t);
	set_link(n, *name);
	virtio_mmio_unlock(n->t);
	ret = -pthread_create(&n->thread, NULL, io_thread, n);
	n->thread_on = !ret;
	if (ret)
		pr_err("virtio-net: cannot start its I/O thread: %s", strerror(-ret));
	return ret;
}

/* ---- the device table ---- */

static int dev_create(void **out, struct bus *bus, const struct device_host *host)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	int ret;

	if (!n)
		return -ENOMEM;
	n->host = *host;
	n->tap_fd = n->kick_fd = -1;
	n->status = VIRTIO_NET_S_LINK_UP;
	ret = virtio_mmio_create(&n->t, bus, host, VIRTIO_NET_SLOT, &net_backend, n);
	if (ret < 0) {
		free(n);
		return ret;
	}
	*out = n;
	return 0;
}

/* Kept, not opened (configure() also runs in warm shells; attach() opens the TAP). */
static int dev_configure(void *dev, const char *arg)
{
	struct virtio_net *n = dev;
	uint8_t mac[ETH_ALEN_];
	bool has_mac;
	int ret = parse_arg(arg, n->tmpl, sizeof(n->tmpl), mac, &has_mac);

	if (!ret && !has_mac)
		ret = mac_random(mac);
	if (ret < 0)
		return ret;
	virtio_mmio_lock(n->t);
	memcpy(n->mac.guest, mac, ETH_ALEN_);
	memcpy(n->mac.wire, mac, ETH_ALEN_);
	virtio_mmio_unlock(n->t);
	n->on = true;
	virtio_mmio_set_present(n->t, true);
	return 0;
}

/* A clone's own TAP (and with mac=, its MAC on the wire) in place of the template's. */
static int dev_rebind(void *dev, const char *arg)
{
	struct virtio_net *n = dev;
	char tmpl[NAME_MAX_];
	uint8_t mac[ETH_ALEN_];
	bool has_mac;
	int ret = parse_arg(arg, tmpl, sizeof(tmpl), mac, &has_mac);

	if (ret < 0)
		return ret;
	if (!n->on || n->thread_on)
		return -EBUSY;
	memcpy(n->tmpl, tmpl, sizeof(tmpl));
	n->own_name = true;
	if (has_mac) {
		virtio_mmio_lock(n->t);
		memcpy(n->mac.wire, mac, ETH_ALEN_);
		virtio_mmio_unlock(n->t);
	}
	return 0;
}

/*
 * A new MAC for the world, and the guest told to announce itself (when its
 * driver took GUEST_ANNOUNCE): its gratuitous ARPs leave with the new MAC.
 */
static int dev_forked(void *dev)
{
	struct virtio_net *n = dev;
	uint8_t mac[ETH_ALEN_];
	int ret;

	if (!n->on)
		return 0;
	ret = mac_random(mac);
	if (ret < 0)
		return ret;
	virtio_mmio_lock(n->t);
	memcpy(n->mac.wire, mac, ETH_ALEN_);
	if (virtio_mmio_driver_features(n->t) & VIRTIO_NET_F_GUEST_ANNOUNCE) {
		n->status |= VIRTIO_NET_S_ANNOUNCE;
		virtio_mmio_config_changed(n->t);
	}
	virtio_mmio_unlock(n->t);
	return 0;
}

static void dev_set_running(void *dev, bool running)
{
	struct virtio_net *n = dev;

	virtio_mmio_lock(n->t);
	n->running = running;
	virtio_mmio_unlock(n->t);
	kick(n);
}

static void dev_destroy(void *dev)
{
	struct virtio_net *n = dev;

	if (!n)
		return;
	stop_thread(n);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	if (n->kick_fd >= 0)
		close(n->kick_fd);
	virtio_mmio_destroy(n->t);
	free(n);
}

static void dev_save(void *dev, void *state)
{
	struct virtio_net *n = dev;
	struct virtio_net_state *st = state;

	memset(st, 0, sizeof(*st));
	virtio_mmio_save(n->t, &st->transport);
	virtio_mmio_lock(n->t);
	st->mac = n->mac;
	st->status = n->status;
	virtio_mmio_unlock(n->t);
}

static int dev_check(const void *state)
{
	const struct virtio_net_state *st = state;

	if ((st->mac.guest[0] & 1) || (st->mac.wire[0] & 1) ||
	    (st->status & ~(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE)))
		return -EINVAL;
	return virtio_mmio_check_state(&st->transport, &net_backend);
}

/* The MACs and status of its time; the link as this VM's TAP has it (attach() says for a new VM). */
static int dev_restore(void *dev, const void *state)
{
	const struct virtio_net_state *st = state;
	struct virtio_net *n = dev;
	static const uint8_t zero[ETH_ALEN_];

	virtio_mmio_restore(n->t, &st->transport);
	virtio_mmio_lock(n->t);
	/* A state made without the device's save (synthetic ones) keeps configure()'s MACs. */
	if (memcmp(st->mac.guest, zero, ETH_ALEN_))
		n->mac = st->mac;
	n->status = (uint16_t)((st->status & ~VIRTIO_NET_S_LINK_UP) |
			       (n->status & VIRTIO_NET_S_LINK_UP));
	n->rx_starved = false;
	virtio_mmio_unlock(n->t);
	kick(n);
	return 0;
}

static int dev_describe(void *dev, struct aml *dsdt)
{
	return virtio_mmio_describe(((struct virtio_net *)dev)->t, dsdt);
}

void virtio_net_stats(void *dev, struct net_stats *s)
{
	struct virtio_net *n = dev;

	virtio_mmio_lock(n->t);
	*s = n->stats;
	virtio_mmio_unlock(n->t);
}

const struct device_type virtio_net_device = {
	.name = "virtio-net", .option = "net", .state_size = sizeof(struct virtio_net_state),
	.create = dev_create, .configure = dev_configure, .destroy = dev_destroy,
	.save = dev_save, .check = dev_check, .restore = dev_restore, .describe = dev_describe,
	.forked = dev_forked, .attach = dev_attach, .rebind = dev_rebind,
	.set_running = dev_set_running,
};

_Static_assert(sizeof(struct virtio_net_state) <= DEVICE_STATE_MAX, "virtio-net state too big");
