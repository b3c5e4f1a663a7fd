#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/layout.h"
#include "core/log.h"
#include "fork/procmsg.h"
#include "state/statefile.h"

_Static_assert(sizeof(((struct mem_ranges *)0)->r[0]) == 16, "ranges travel as u64 pairs");

/* ---- Messages ---- */

void procmsg_init(struct procmsg_hdr *hdr, enum procmsg_type type, uint32_t size, int status)
{
	*hdr = (struct procmsg_hdr){ .magic = PROCMSG_MAGIC, .version = PROCMSG_VERSION,
				     .type = type, .size = size, .status = status };
}

int procmsg_send(int sock, const void *msg, uint32_t size, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PROCMSG_JOB_NFDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > PROCMSG_JOB_NFDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)size ? 0 : -EIO; /* SEQPACKET: all or nothing */
}

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Every fd the message carried goes into got[] (up to max; the rest are closed). */
static unsigned collect_fds(struct msghdr *mh, int *got, unsigned max)
{
	unsigned n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		unsigned k;
		int *data = (int *)CMSG_DATA(c);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, data + i, sizeof(fd));
			if (n < max)
				got[n] = fd;
			else
				close(fd);
			n++;
		}
	}
	return n;
}

static int wait_readable(int sock, int timeout_ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int check_hdr(const struct procmsg_hdr *h, uint32_t size, enum procmsg_type type)
{
	if (h->magic != PROCMSG_MAGIC)
		return -EPROTO;
	if (h->version != PROCMSG_VERSION)
		return -EPROTONOSUPPORT;
	if (h->type != (uint32_t)type || h->size != size)
		return -EPROTO;
	return 0;
}

int procmsg_recv(int sock, void *msg, uint32_t size, enum procmsg_type type, int *fds,
		 unsigned nfds, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * (PROCMSG_JOB_NFDS + 2))];
		struct cmsghdr align;
	} ctl;
	int got[PROCMSG_JOB_NFDS + 2];
	struct iovec iov = { .iov_base = msg, .iov_len = size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	unsigned nfd, kept;
	ssize_t n;
	int ret = wait_readable(sock, timeout_ms);

	if (ret < 0 || nfds > PROCMSG_JOB_NFDS || size < sizeof(struct procmsg_hdr))
		return ret < 0 ? ret : -EINVAL;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	nfd = collect_fds(&mh, got, PROCMSG_JOB_NFDS + 2);
	kept = nfd < PROCMSG_JOB_NFDS + 2 ? nfd : PROCMSG_JOB_NFDS + 2;
	if (n == 0 && !nfd)
		ret = -ECONNRESET;
	else if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		ret = -EMSGSIZE;
	else if ((size_t)n != size || nfd != nfds)
		ret = -EBADMSG;
	else
		ret = check_hdr(msg, size, type);
	if (ret < 0) {
		close_fds(got, kept);
		return ret;
	}
	if (nfds)
		memcpy(fds, got, nfds * sizeof(int));
	return 0;
}

int procmsg_send_status(int sock, enum procmsg_type type, int status)
{
	struct procmsg_hdr h;

	procmsg_init(&h, type, sizeof(h), status);
	return procmsg_send(sock, &h, sizeof(h), NULL, 0);
}

int procmsg_recv_status(int sock, enum procmsg_type type, int timeout_ms)
{
	struct procmsg_hdr h;
	int ret = procmsg_recv(sock, &h, sizeof(h), type, NULL, 0, timeout_ms);

	if (ret < 0)
		return ret;
	/* A status is 0 or a negative errno; anything else is a broken peer. */
	return h.status <= 0 && h.status > -4096 ? h.status : -EPROTO;
}

/* ---- Checks a worker makes ---- */

int procmsg_check_shape(const struct procmsg_shape *s)
{
	if (s->mem_size < VM_MIN_MEM || s->mem_size > VM_MAX_MEM || s->mem_size % (2 * MiB) ||
	    s->ncpus < 1 || s->ncpus > VM_MAX_CPUS || s->mask.n > CPUID_MAX_MASKS)
		return -EINVAL;
	for (unsigned i = 0; i < s->mask.n; i++)
		if ((unsigned)s->mask.bits[i].reg > CPUID_EDX || s->mask.bits[i].bit > 31)
			return -EINVAL;
	return 0;
}

int procmsg_check_job(const struct procmsg_job *job)
{
	if (!memchr(job->console, 0, sizeof(job->console)) || !job->console[0])
		return -EINVAL;
	if (job->clone_id == UINT64_MAX || !job->generation || !job->child_index)
		return -EINVAL;
	/* Whether each names a device that is on and can rebind, the clone's load decides. */
	for (unsigned i = 0; i < DEVICE_MAX; i++)
		if (!memchr(job->devices[i], 0, sizeof(job->devices[i])))
			return -EINVAL;
	return 0;
}

int procmsg_check_base(int fd, uint64_t mem_size)
{
	int need = F_SEAL_WRITE | F_SEAL_SHRINK, seals;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != mem_size)
		return -EINVAL;
	/* A shrinking file would SIGBUS the clone; a written one would change under it. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 && errno != EINVAL) /* EINVAL: not a memfd (--mem-file) */
		return -errno;
	if (seals >= 0 && (seals & need) != need)
		return -EINVAL;
	return 0;
}

/* ---- The state file ---- */

struct state_layout {
	uint64_t blob_off, ranges_off, pages_off, size;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Bounded inputs (blob <= 16 MiB, nranges <= 2^28, pages <= 1 TiB): nothing overflows. */
static void state_layout(uint64_t blob_size, uint32_t nranges, uint64_t pages_bytes,
			 struct state_layout *l)
{
	l->blob_off = align_up(sizeof(struct procmsg_state_hdr), 64);
	l->ranges_off = align_up(l->blob_off + blob_size, 64);
	l->pages_off = align_up(l->ranges_off + (uint64_t)nranges * 16, PAGE_SIZE);
	l->size = l->pages_off + pages_bytes;
}

static int pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG; /* shorter than its header says */
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int write_state(int fd, const struct procmsg_state_hdr *h, const void *blob,
		       const struct mem_ranges *ranges, const struct guest_mem *src,
		       const struct state_layout *l)
{
	uint64_t pos = l->pages_off;
	int ret = pwrite_all(fd, h, sizeof(*h), 0);

	if (!ret)
		ret = pwrite_all(fd, blob, h->blob_size, l->blob_off);
	if (!ret && ranges->n)
		ret = pwrite_all(fd, ranges->r, ranges->n * sizeof(ranges->r[0]), l->ranges_off);
	for (unsigned i = 0; !ret && i < ranges->n; i++) {
		ret = pwrite_all(fd, src->host + ranges->r[i].off, ranges->r[i].len, pos);
		pos += ranges->r[i].len;
	}
	return ret;
}

/* A sealed memfd of l->size bytes written by write_state(). */
static int sealed_state(const struct procmsg_state_hdr *h, const void *blob,
			const struct mem_ranges *ranges, const struct guest_mem *src,
			const struct state_layout *l)
{
	int seals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
	int fd = memfd_create("vm-fork-state", MFD_CLOEXEC | MFD_ALLOW_SEALING), ret;

	if (fd < 0)
		return -errno;
	ret = ftruncate(fd, (off_t)l->size) < 0 ? -errno : 0;
	if (!ret)
		ret = write_state(fd, h, blob, ranges, src, l);
	if (!ret && fcntl(fd, F_ADD_SEALS, seals) < 0)
		ret = -errno;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int procmsg_state_create(const struct vm_snapshot *snap, const struct kvm_cpuid2 *cpuid,
			 const struct mem_ranges *ranges, const struct guest_mem *src)
{
	struct snap_meta meta = { .mem_file_size = src->size };
	struct procmsg_state_hdr h = {
		.magic = PROCMSG_MAGIC, .version = PROCMSG_VERSION, .hdr_size = sizeof(h),
		.ncpus = snap->ncpus, .nranges = ranges->n, .mem_size = snap->mem_size,
		.pages_bytes = ranges->pages * PAGE_SIZE,
	};
	struct state_layout l;
	size_t blob_size;
	void *blob;
	int ret;

	if (snap->ncpus < 1 || snap->ncpus > VM_MAX_CPUS || snap->mem_size != src->size || !cpuid)
		return -EINVAL;
	snprintf(meta.source, sizeof(meta.source), "process fork");
	ret = snapfile_build(snap, &meta, cpuid, &blob, &blob_size);
	if (ret < 0)
		return ret;
	h.blob_size = blob_size;
	state_layout(blob_size, ranges->n, h.pages_bytes, &l);
	h.file_size = l.size;
	ret = blob_size > PROCMSG_MAX_BLOB ? -E2BIG : sealed_state(&h, blob, ranges, src, &l);
	free(blob);
	return ret;
}

static int check_state_hdr(const struct procmsg_state_hdr *h, uint64_t mem_size, unsigned ncpus)
{
	if (h->magic != PROCMSG_MAGIC || h->version != PROCMSG_VERSION ||
	    h->hdr_size != sizeof(*h) || !h->blob_size || h->blob_size > PROCMSG_MAX_BLOB)
		return -EBADMSG;
	if (h->ncpus != ncpus || h->mem_size != mem_size)
		return -EINVAL;
	if (h->nranges > mem_size / PAGE_SIZE || h->pages_bytes > mem_size ||
	    h->pages_bytes % PAGE_SIZE)
		return -EBADMSG;
	return 0;
}

/* Page-aligned, inside the RAM, ascending without overlap, adding up to the header's total. */
static int check_ranges(const struct mem_ranges *r, uint64_t mem_size, uint64_t pages_bytes)
{
	uint64_t end = 0, sum = 0;

	for (unsigned i = 0; i < r->n; i++) {
		uint64_t off = r->r[i].off, len = r->r[i].len;

		if (!len || off % PAGE_SIZE || len % PAGE_SIZE || off < end || off > mem_size ||
		    len > mem_size - off)
			return -EBADMSG;
		end = off + len;
		sum += len;
	}
	return sum == pages_bytes ? 0 : -EBADMSG;
}

/* The FDT, read into our memory and checked as a snapshot's state.dtb is. */
static int read_snapshot(int fd, const struct state_layout *l, const struct procmsg_state_hdr *h,
			 struct vm_snapshot *snap)
{
	struct kvm_cpuid2 *cpuid = NULL;
	struct snap_meta meta;
	void *blob = malloc(h->blob_size);
	int ret = blob ? pread_all(fd, blob, h->blob_size, l->blob_off) : -ENOMEM;

	if (!ret)
		ret = snapfile_parse(blob, h->blob_size, snap, &meta, &cpuid);
	/* vCPU 0's CPUID travels for the record: the shell was shaped by the job's shape. */
	free(cpuid);
	free(blob);
	if (!ret && (snap->ncpus != h->ncpus || snap->mem_size != h->mem_size))
		ret = -EBADMSG;
	return ret;
}

static int read_ranges(int fd, const struct state_layout *l, const struct procmsg_state_hdr *h,
		       struct mem_ranges *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	if (!h->nranges)
		return h->pages_bytes ? -EBADMSG : 0;
	r->r = malloc(h->nranges * sizeof(r->r[0]));
	if (!r->r)
		return -ENOMEM;
	r->n = r->cap = h->nranges;
	ret = pread_all(fd, r->r, h->nranges * sizeof(r->r[0]), l->ranges_off);
	if (!ret)
		ret = check_ranges(r, h->mem_size, h->pages_bytes);
	r->pages = h->pages_bytes / PAGE_SIZE;
	return ret;
}

int procmsg_state_read(int fd, uint64_t mem_size, unsigned ncpus, struct vm_snapshot *snap,
		       struct mem_ranges *ranges, uint64_t *pages_off)
{
	struct procmsg_state_hdr h;
	struct state_layout l;
	struct stat st;
	int ret;

	memset(snap, 0, sizeof(*snap));
	memset(ranges, 0, sizeof(*ranges));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(h))
		return -EBADMSG;
	/* Read once into our memory, then checked: the sender cannot change it under us. */
	ret = pread_all(fd, &h, sizeof(h), 0);
	if (!ret)
		ret = check_state_hdr(&h, mem_size, ncpus);
	if (ret < 0)
		return ret;
	state_layout(h.blob_size, h.nranges, h.pages_bytes, &l);
	if (h.file_size != l.size || (uint64_t)st.st_size != l.size)
		return -EBADMSG;
	ret = read_snapshot(fd, &l, &h, snap);
	if (!ret)
		ret = read_ranges(fd, &l, &h, ranges);
	if (ret < 0) {
		vm_snapshot_free(snap);
		mem_ranges_free(ranges);
		return ret;
	}
	*pages_off = l.pages_off;
	return 0;
}

int procmsg_state_copy_pages(int fd, const struct mem_ranges *ranges, uint64_t pages_off,
			     struct guest_mem *dst)
{
	uint64_t pos = pages_off;
	int ret = 0;

	for (unsigned i = 0; !ret && i < ranges->n; i++) {
		if (ranges->r[i].off > dst->size || ranges->r[i].len > dst->size - ranges->r[i].off)
			return -EINVAL;
		/* Straight from the file into the clone's own (private) pages. */
		ret = pread_all(fd, dst->host + ranges->r[i].off, ranges->r[i].len, pos);
		pos += ranges->r[i].len;
	}
	return ret;
}
