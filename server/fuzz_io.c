/*
 * vm-fork fuzz's regions: the coverage map and the input, each memory of its
 * own mapped into the guest as a KVM memory slot outside RAM. Under
 * afl-fuzz the map is afl-fuzz's own shared memory (__AFL_SHM_ID), so the
 * guest's edges land in it with no copy; the input comes from afl-fuzz's
 * shared memory (__AFL_SHM_FUZZ_ID), its @@ file, or stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "core/log.h"
#include "server/fuzz_int.h"

static uint64_t page_round(uint64_t n)
{
	return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

/*
 * afl-fuzz's segment named by env, at least min bytes (its size in *size);
 * NULL when absent or too small.
 */
static void *attach_afl_shm(const char *env, uint64_t min, bool read_only, uint64_t *size)
{
	const char *id_text = getenv(env);
	struct shmid_ds ds;
	char *end;
	long id;
	void *p;

	if (!id_text)
		return NULL;
	id = strtol(id_text, &end, 10);
	if (*end || id < 0 || shmctl((int)id, IPC_STAT, &ds) < 0 || ds.shm_segsz < min) {
		pr_err("fuzz: %s=%s is not a shared memory segment of %llu bytes or more", env,
		       id_text, (unsigned long long)min);
		return NULL;
	}
	p = shmat((int)id, NULL, read_only ? SHM_RDONLY : 0);
	if (p == (void *)-1) {
		pr_err("fuzz: cannot attach %s=%s: %s", env, id_text, strerror(errno));
		return NULL;
	}
	*size = ds.shm_segsz;
	return p;
}

static int map_coverage(struct fuzz_session *s)
{
	uint64_t size = s->cfg.map_size, seg;

	if (s->cfg.afl && getenv("__AFL_SHM_ID")) {
		s->map = attach_afl_shm("__AFL_SHM_ID", size, false, &seg);
		if (!s->map)
			return -EINVAL;
		s->map_is_afl = true;
	} else {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -errno;
		s->map = p;
	}
	if (!s->cfg.coverage)
		return 0; /* kept to mark the one constant edge; the guest does not see it */
	return guest_mem_map_host(s->vm->fd, MEM_SLOT_FUZZ_MAP, LAYOUT_FUZZ_MAP, s->map, size,
				  false);
}

static int map_input(struct fuzz_session *s)
{
	void *p;

	s->input_bytes = page_round(sizeof(*s->input) + s->cfg.input_max);
	p = mmap(NULL, s->input_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	s->input = p;
	return guest_mem_map_host(s->vm->fd, MEM_SLOT_FUZZ_INPUT, LAYOUT_FUZZ_INPUT, s->input,
				  s->input_bytes, true);
}

int fuzz_attach_afl_input(struct fuzz_session *s)
{
	uint64_t seg;

	s->afl_input = attach_afl_shm("__AFL_SHM_FUZZ_ID", sizeof(uint32_t), true, &seg);
	s->afl_input_max = seg - sizeof(uint32_t);
	return s->afl_input ? 0 : -EINVAL;
}

int fuzz_map_regions(struct fuzz_session *s)
{
	struct ctl_fuzz_info info = {
		.input_gpa = LAYOUT_FUZZ_INPUT, .input_max = s->cfg.input_max,
		.map_gpa = s->cfg.coverage ? LAYOUT_FUZZ_MAP : 0,
		.map_size = s->cfg.coverage ? s->cfg.map_size : 0,
	};
	int ret = map_coverage(s);

	if (!ret)
		ret = map_input(s);
	if (!ret)
		ctl_set_fuzz(&s->vm->ctl, &info);
	return ret;
}

void fuzz_unmap_regions(struct fuzz_session *s)
{
	struct ctl_fuzz_info none = { 0 };

	ctl_set_fuzz(&s->vm->ctl, &none);
	if (s->input) {
		guest_mem_map_host(s->vm->fd, MEM_SLOT_FUZZ_INPUT, LAYOUT_FUZZ_INPUT, s->input, 0, true);
		munmap(s->input, s->input_bytes);
	}
	if (s->map && s->cfg.coverage)
		guest_mem_map_host(s->vm->fd, MEM_SLOT_FUZZ_MAP, LAYOUT_FUZZ_MAP, s->map, 0, false);
	if (s->map && s->map_is_afl)
		shmdt(s->map);
	else if (s->map)
		munmap(s->map, s->cfg.map_size);
	if (s->afl_input)
		shmdt(s->afl_input);
	s->input = NULL;
	s->map = NULL;
	s->afl_input = NULL;
}

/*
 * Read up to max bytes from fd at offset 0: afl-fuzz rewrites the same file
 * each run. A pipe (a replay's stdin) is read as it comes.
 */
static int read_from_start(int fd, uint8_t *buf, uint64_t max, uint64_t *len)
{
	bool stream = lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE;
	uint64_t got = 0;

	while (got < max) {
		ssize_t n = stream ? read(fd, buf + got, max - got)
				   : pread(fd, buf + got, max - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	*len = got;
	return 0;
}

int fuzz_load_input(struct fuzz_session *s)
{
	uint64_t max = s->cfg.input_max, len = 0;
	int fd, ret;

	if (s->afl_input) {
		uint32_t n;

		memcpy(&n, s->afl_input, sizeof(n));
		len = n < max ? n : max;
		len = len < s->afl_input_max ? len : s->afl_input_max; /* never past the segment */
		memcpy(s->input->data, s->afl_input + sizeof(n), len);
		s->input->len = len;
		return 0;
	}
	fd = s->cfg.input_path ? open(s->cfg.input_path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		ret = -errno;
		pr_err("fuzz: cannot open the input %s: %s", s->cfg.input_path, strerror(-ret));
		return ret;
	}
	ret = read_from_start(fd, s->input->data, max, &len);
	if (s->cfg.input_path)
		close(fd);
	if (ret < 0)
		pr_err("fuzz: cannot read the input: %s", strerror(-ret));
	s->input->len = len;
	return ret;
}
