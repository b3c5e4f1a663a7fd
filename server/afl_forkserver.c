/* AFL++'s forkserver protocol, the target's side (server/afl_forkserver.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "server/afl_forkserver.h"

#define SHDMEM_AGREED (AFL_FS_OPT_ENABLED | AFL_FS_OPT_SHDMEM_FUZZ)

static int read_word(int fd, uint32_t *w)
{
	size_t got = 0;

	while (got < sizeof(*w)) {
		ssize_t n = read(fd, (char *)w + got, sizeof(*w) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) /* afl-fuzz closed: gone, or a word cut short */
			return got ? -EPROTO : -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

static int write_word(int fd, uint32_t w)
{
	size_t put = 0;

	while (put < sizeof(w)) {
		ssize_t n = write(fd, (const char *)&w + put, sizeof(w) - put);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		put += (size_t)n;
	}
	return 0;
}

int afl_fs_hello(struct afl_forkserver *fs, int ctl, int st, uint32_t map_size, bool shm_input)
{
	uint32_t hello, reply;
	int ret;

	if (map_size < 2 || map_size > AFL_FS_MAP_MAX)
		return -EINVAL;
	memset(fs, 0, sizeof(*fs));
	fs->ctl = ctl;
	fs->st = st;
	hello = AFL_FS_OPT_ENABLED | AFL_FS_OPT_MAPSIZE | ((map_size - 1) << 1);
	if (shm_input)
		hello |= AFL_FS_OPT_SHDMEM_FUZZ;
	ret = write_word(st, hello);
	/* afl-fuzz answers only an offer of shared-memory input; anything else would be a run. */
	if (!ret && shm_input) {
		ret = read_word(ctl, &reply);
		if (!ret && reply != SHDMEM_AGREED)
			ret = -EPROTO;
		fs->shm_input = !ret;
	}
	return ret;
}

int afl_fs_next(struct afl_forkserver *fs, bool *was_killed)
{
	uint32_t w;
	int ret = read_word(fs->ctl, &w);

	if (!ret)
		*was_killed = w != 0;
	return ret;
}

int afl_fs_started(struct afl_forkserver *fs, pid_t pid)
{
	return pid > 0 ? write_word(fs->st, (uint32_t)pid) : -EINVAL;
}

int afl_fs_finished(struct afl_forkserver *fs, int status)
{
	return write_word(fs->st, (uint32_t)status);
}
