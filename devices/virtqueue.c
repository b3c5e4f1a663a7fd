/* The split virtqueue, as a device sees it (devices/virtqueue.h). */
#include <errno.h>
#include <string.h>

#include "core/memory.h"
#include "devices/virtqueue.h"

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

#define AVAIL_FLAGS(st)   ((st)->avail)
#define AVAIL_IDX(st)     ((st)->avail + 2)
#define AVAIL_RING(st, i) ((st)->avail + 4 + 2ULL * ((i) % (st)->size))
#define USED_IDX(st)      ((st)->used + 2)
#define USED_RING(st, i)  ((st)->used + 4 + 8ULL * ((i) % (st)->size))

int vq_check_state(const struct vq_state *st)
{
	if (st->size > VQ_MAX_SIZE || (st->size & (st->size - 1)) || (st->ready && !st->size))
		return -EINVAL;
	return st->ready > 1 || st->broken > 1 ? -EINVAL : 0;
}

void vq_load(struct virtqueue *vq, const struct vq_state *st)
{
	vq->st = *st;
	/* Whatever was pushed before was signalled then: pushes and signals share a lock hold. */
	vq->signalled = st->used_idx;
}

static int read_u16(const struct virtqueue *vq, uint64_t gpa, uint16_t *v)
{
	return guest_read(vq->mem, gpa, v, sizeof(*v));
}

static int broken(struct virtqueue *vq)
{
	if (!vq->st.broken)
		vq->stats.broken++;
	vq->st.broken = 1;
	return -EIO;
}

/* Add desc to c if the rules allow it: its range is RAM, it does not wrap, writables come last. */
static bool add_seg(const struct virtqueue *vq, struct vq_chain *c, const struct vring_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	uint64_t *total = writable ? &c->writable : &c->readable;

	if (d->flags & VIRTQ_DESC_F_INDIRECT || !d->len || c->nseg >= vq->st.size)
		return false;
	if (!writable && c->writable)
		return false;
	if (d->addr + d->len < d->addr || !gpa_ptr(vq->mem, d->addr, d->len))
		return false;
	if (c->readable + c->writable + d->len > UINT32_MAX)
		return false;
	*total += d->len;
	c->seg[c->nseg++] = (struct vq_seg){ .gpa = d->addr, .len = d->len, .writable = writable };
	return true;
}

/* Walk the chain from c->head: at most size descriptors, so a loop ends as a bad chain. */
static bool walk(const struct virtqueue *vq, struct vq_chain *c)
{
	uint16_t i = c->head;
	struct vring_desc d;

	for (unsigned n = 0; n < vq->st.size; n++) {
		if (i >= vq->st.size ||
		    guest_read(vq->mem, vq->st.desc + 16ULL * i, &d, sizeof(d)) < 0 ||
		    !add_seg(vq, c, &d))
			return false;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return true;
		i = d.next;
	}
	return false;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c)
{
	struct vq_state *st = &vq->st;
	uint16_t avail_idx, head;

	if (!st->ready || st->broken)
		return st->broken ? -EIO : 0;
	if (read_u16(vq, AVAIL_IDX(st), &avail_idx) < 0)
		return broken(vq);
	if ((uint16_t)(avail_idx - st->last_avail) > st->size)
		return broken(vq);
	if (avail_idx == st->last_avail)
		return 0;
	/* The ring entry and descriptors were written before the index: read them after it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (read_u16(vq, AVAIL_RING(st, st->last_avail), &head) < 0)
		return broken(vq);
	st->last_avail++;
	memset(c, 0, offsetof(struct vq_chain, seg));
	c->head = head;
	if (walk(vq, c)) {
		vq->stats.chains++;
		return 1;
	}
	vq->stats.bad_chains++;
	/* A head beyond the queue cannot be named in the used ring: it is dropped. */
	if (head < st->size && vq_push(vq, head, 0) < 0)
		return -EIO;
	return -EBADMSG;
}

int vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	struct vq_state *st = &vq->st;
	uint32_t elem[2] = { head, len };

	if (head >= st->size) /* also a queue with no size, whose ring has no entry */
		return -EINVAL;
	if (!st->ready || guest_write(vq->mem, USED_RING(st, st->used_idx), elem, sizeof(elem)) < 0)
		return broken(vq);
	/* The element before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	st->used_idx++;
	if (guest_write(vq->mem, USED_IDX(st), &st->used_idx, sizeof(st->used_idx)) < 0)
		return broken(vq);
	return 0;
}

bool vq_wants_interrupt(struct virtqueue *vq)
{
	uint16_t flags;

	if (vq->signalled == vq->st.used_idx)
		return false;
	vq->signalled = vq->st.used_idx;
	/* The used index written before the driver's flag is read (the driver does the opposite). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (read_u16(vq, AVAIL_FLAGS(&vq->st), &flags) < 0)
		return true;
	return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copy between buf and the chain's readable or writable part, from offset off within it. */
static size_t copy(const struct virtqueue *vq, const struct vq_chain *c, bool writable,
		   uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < c->nseg && done < len; i++) {
		const struct vq_seg *s = &c->seg[i];
		uint64_t n;

		if (s->writable != writable)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off < len - done ? s->len - off : len - done;
		if ((writable ? guest_write(vq->mem, s->gpa + off, (uint8_t *)buf + done, n)
			      : guest_read(vq->mem, s->gpa + off, (uint8_t *)buf + done, n)) < 0)
			break;
		done += n;
		off = 0;
	}
	return done;
}

size_t vq_read(const struct virtqueue *vq, const struct vq_chain *c, uint64_t off, void *dst,
	       size_t len)
{
	return copy(vq, c, false, off, dst, len);
}

size_t vq_write(const struct virtqueue *vq, const struct vq_chain *c, uint64_t off,
		const void *src, size_t len)
{
	return copy(vq, c, true, off, (void *)src, len);
}

void vq_unpop(struct virtqueue *vq)
{
	vq->st.last_avail--;
	vq->stats.chains--;
}
