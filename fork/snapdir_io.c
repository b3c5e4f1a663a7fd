#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/layout.h"
#include "core/log.h"
#include "fork/snapdir_io.h"

#define RANGES_MAGIC 0x53454741504b4656ULL /* "VFKPAGES" */
#define RANGES_VERSION 1
#define RANGES_MAX (1u << 24)

struct ranges_header {
	uint64_t magic;
	uint32_t version, count;
};

static int path_of(char *out, size_t size, const char *dir, const char *name)
{
	return snprintf(out, size, "%s/%s", dir, name) < (int)size ? 0 : -ENAMETOOLONG;
}

int snapio_create(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd, ret = path_of(path, sizeof(path), dir, name);

	if (ret < 0)
		return ret;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* All of len bytes at off, through short transfers and EINTR; a read past the end is -EIO. */
static int io_all(int fd, uint8_t *p, size_t len, off_t off, bool write)
{
	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int snapio_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	return io_all(fd, (uint8_t *)buf, len, off, true);
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	return io_all(fd, buf, len, off, false);
}

static int page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE_SIZE];

	return !memcmp(p, zero, PAGE_SIZE);
}

int snapio_copy_nonzero(int in, int out, uint8_t *buf, off_t pos, size_t len)
{
	int ret = pread_all(in, buf, len, pos);

	for (size_t off = 0; !ret && off < len; off += PAGE_SIZE) {
		size_t n = len - off < PAGE_SIZE ? len - off : PAGE_SIZE;

		if (n == PAGE_SIZE && page_is_zero(buf + off))
			continue;
		ret = snapio_pwrite_all(out, buf + off, n, pos + (off_t)off);
	}
	return ret;
}

int snapio_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	int fd = snapio_create(dir, name), ret;

	if (fd < 0)
		return fd;
	ret = snapio_pwrite_all(fd, data, len, 0);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int snapio_read_file(const char *dir, const char *name, size_t max, void **data, size_t *len)
{
	char path[PATH_MAX];
	int fd, ret = path_of(path, sizeof(path), dir, name);
	off_t size;
	void *buf;

	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size = lseek(fd, 0, SEEK_END);
	if (size < 0 || (uint64_t)size > max) {
		close(fd);
		return size < 0 ? -errno : -EFBIG;
	}
	buf = malloc(size ? (size_t)size : 1);
	ret = buf ? pread_all(fd, buf, (size_t)size, 0) : -ENOMEM;
	close(fd);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	*data = buf;
	*len = (size_t)size;
	return 0;
}

int snapio_write_ranges(const char *dir, const char *name, const struct mem_ranges *r)
{
	size_t len = sizeof(struct ranges_header) + r->n * 16 + 4;
	uint8_t *buf = malloc(len), *p;
	struct ranges_header h = { RANGES_MAGIC, RANGES_VERSION, r->n };
	uint32_t crc;
	int ret;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, sizeof(h));
	p = buf + sizeof(h);
	for (unsigned i = 0; i < r->n; i++, p += 16) {
		memcpy(p, &r->r[i].off, 8);
		memcpy(p + 8, &r->r[i].len, 8);
	}
	crc = (uint32_t)crc32(0, buf, (uInt)(len - 4));
	memcpy(p, &crc, 4);
	ret = snapio_write_file(dir, name, buf, len);
	free(buf);
	return ret;
}

static int check_range(uint64_t off, uint64_t len, uint64_t mem_size)
{
	if (!len || off % PAGE_SIZE || len % PAGE_SIZE || off > mem_size || len > mem_size - off)
		return -EBADMSG;
	return 0;
}

static int parse_ranges(const uint8_t *buf, size_t len, uint64_t mem_size, struct mem_ranges *r)
{
	struct ranges_header h;
	uint32_t crc;

	if (len < sizeof(h) + 4)
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	memcpy(&crc, buf + len - 4, 4);
	if (h.magic != RANGES_MAGIC || h.version != RANGES_VERSION || h.count > RANGES_MAX ||
	    len != sizeof(h) + (size_t)h.count * 16 + 4 || crc != crc32(0, buf, (uInt)(len - 4)))
		return -EBADMSG;
	r->r = calloc(h.count ? h.count : 1, sizeof(r->r[0]));
	if (!r->r)
		return -ENOMEM;
	r->n = r->cap = h.count;
	for (unsigned i = 0; i < h.count; i++) {
		memcpy(&r->r[i].off, buf + sizeof(h) + i * 16, 8);
		memcpy(&r->r[i].len, buf + sizeof(h) + i * 16 + 8, 8);
		if (check_range(r->r[i].off, r->r[i].len, mem_size) < 0)
			return -EBADMSG;
		r->pages += r->r[i].len / PAGE_SIZE;
	}
	return 0;
}

int snapio_read_ranges(const char *dir, const char *name, uint64_t mem_size,
		       struct mem_ranges *r)
{
	void *buf;
	size_t len;
	int ret = snapio_read_file(dir, name, sizeof(struct ranges_header) + 16ULL * RANGES_MAX + 4,
				   &buf, &len);

	memset(r, 0, sizeof(*r));
	if (ret < 0)
		return ret;
	ret = parse_ranges(buf, len, mem_size, r);
	free(buf);
	if (ret < 0) {
		pr_err("snapshot %s: %s is damaged", dir, name);
		mem_ranges_free(r);
	}
	return ret;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int snapio_commit_dir(const char *tmp, const char *dir)
{
	char parent[PATH_MAX];
	int ret = fsync_path(tmp);

	if (!ret && rename(tmp, dir) < 0)
		ret = -errno;
	snprintf(parent, sizeof(parent), "%s", dir);
	if (!ret)
		ret = fsync_path(dirname(parent));
	return ret;
}

void snapio_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

uint64_t snapio_data_bytes(int fd, uint64_t size, int skip)
{
	uint64_t total = 0;
	off_t pos = 0;

	while (!skip && (uint64_t)pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			break;
		total += (uint64_t)(hole - data);
		pos = hole;
	}
	return total;
}
