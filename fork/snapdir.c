#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/clock.h"
#include "core/kvm.h"
#include "core/log.h"
#include "fork/capture.h"
#include "fork/snapdir.h"
#include "fork/snapdir_io.h"
#include "fork/vmm.h"
#include "state/statefile.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define CHUNK (1 * MiB)

struct snapshot_job {
	pthread_t thread;
	pthread_mutex_t lock;
	struct snapshot_progress progress;
	char dir[PATH_MAX], tmp[PATH_MAX + 32], base_dir[PATH_MAX];
	int base_fd;                 /* the frozen base: a dup, ours */
	uint64_t mem_size;
	bool diff;
	struct vm_capture cap;       /* state, own pages and their contents at the pause */
	void *state;                 /* state.dtb */
	size_t state_len;
};

static void add_progress(struct snapshot_job *job, uint64_t bytes)
{
	pthread_mutex_lock(&job->lock);
	job->progress.bytes_done += bytes;
	pthread_mutex_unlock(&job->lock);
}

/* Copy the base's data extents (SEEK_DATA/SEEK_HOLE) into out, skipping zero pages. */
static int write_base(struct snapshot_job *job, int out, uint8_t *buf)
{
	off_t pos = 0, end = (off_t)job->mem_size;

	while (pos < end) {
		off_t data = lseek(job->base_fd, pos, SEEK_DATA), hole;

		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(job->base_fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		for (off_t at = data; at < hole; at += (off_t)CHUNK) {
			size_t len = (size_t)(hole - at < (off_t)CHUNK ? hole - at : (off_t)CHUNK);
			int ret = snapio_copy_nonzero(job->base_fd, out, buf, at, len);

			if (ret < 0)
				return ret;
			add_progress(job, len);
		}
		pos = hole;
	}
	return 0;
}

/* The VM's own pages go over the base (a full snapshot) or alone (a diff). */
static int write_own(struct snapshot_job *job, int out)
{
	const struct mem_ranges *own = &job->cap.pages;
	const uint8_t *p = job->cap.data;

	for (unsigned i = 0; i < own->n; i++) {
		int ret = snapio_pwrite_all(out, p, own->r[i].len, (off_t)own->r[i].off);

		if (ret < 0)
			return ret;
		p += own->r[i].len;
		add_progress(job, own->r[i].len);
	}
	return 0;
}

static int write_mem(struct snapshot_job *job)
{
	uint8_t *buf = malloc(CHUNK);
	int out, ret;

	if (!buf)
		return -ENOMEM;
	out = snapio_create(job->tmp, "mem");
	ret = out < 0 ? out : 0;
	if (!ret && ftruncate(out, (off_t)job->mem_size) < 0)
		ret = -errno;
	if (!ret && !job->diff)
		ret = write_base(job, out, buf);
	if (!ret)
		ret = write_own(job, out);
	if (!ret && fsync(out) < 0)
		ret = -errno;
	if (out >= 0)
		close(out);
	free(buf);
	return ret;
}

/* What the devices' states name but cannot hold (a disk's overlays), as their own files. */
static int write_devices(struct snapshot_job *job)
{
	int ret = 0;

	for (unsigned i = 0; !ret && device_table[i]; i++)
		if (job->cap.state.devs[i].ref && device_table[i]->export)
			ret = device_table[i]->export(job->cap.state.devs[i].ref, job->tmp);
	return ret;
}

static int write_files(struct snapshot_job *job)
{
	int ret = write_mem(job);

	if (!ret)
		ret = write_devices(job);

	if (!ret && job->diff)
		ret = snapio_write_ranges(job->tmp, "pages", &job->cap.pages);
	if (!ret && job->diff)
		ret = snapio_write_file(job->tmp, "base", job->base_dir, strlen(job->base_dir));
	if (!ret)
		ret = snapio_write_file(job->tmp, "state.dtb", job->state, job->state_len);
	if (!ret)
		ret = snapio_commit_dir(job->tmp, job->dir);
	return ret;
}

static void *writer_thread(void *arg)
{
	struct snapshot_job *job = arg;
	int ret = write_files(job);

	if (ret < 0) {
		pr_err("snapshot %s: %s", job->dir, strerror(-ret));
		snapio_remove_dir(job->tmp);
	}
	pthread_mutex_lock(&job->lock);
	job->progress.done = true;
	job->progress.result = ret;
	pthread_mutex_unlock(&job->lock);
	return NULL;
}

static int build_state(struct vm *vm, struct snapshot_job *job, uint64_t base_id)
{
	struct snap_meta meta = {
		.mem_size = vm->mem.size, .ncpus = vm->ncpus, .created_unix = (uint64_t)time(NULL),
		.mem_file_size = vm->mem.size, .is_diff = job->diff, .base_id = base_id,
	};
	struct kvm_cpuid2 *cpuid = NULL;
	int ret;

	snprintf(meta.source, sizeof(meta.source), "vm-fork VM %llu",
		 (unsigned long long)vm->id);
	if (getrandom(&meta.id, sizeof(meta.id), 0) != sizeof(meta.id))
		meta.id = now_ns() ^ ((uint64_t)getpid() << 32);
	/* What we gave KVM, not KVM_GET_CPUID2: some nested hosts answer that with their own. */
	cpuid = vm_cpuid(vm);
	ret = cpuid ? 0 : -ENOMEM;
	if (!ret)
		ret = snapfile_build(&job->cap.state, &meta, cpuid, &job->state, &job->state_len);
	free(cpuid);
	return ret;
}

/* A diff needs the VM to run on the base snapshot's memory file. */
static int check_diff_base(struct vm *vm, const char *base_dir, uint64_t *base_id)
{
	struct snapshot_image img;
	struct stat a, b;
	int ret = snapshot_open(base_dir, vm->kvm->supported_cpuid, &img);

	if (ret < 0)
		return ret;
	if (img.is_diff || fstat(img.mem.fd, &a) < 0 || fstat(vm->mem.fd, &b) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		pr_err("snapshot --diff: VM %llu was not restored from the full snapshot %s",
		       (unsigned long long)vm->id, base_dir);
		ret = -EINVAL;
	}
	*base_id = img.id;
	snapshot_close(&img);
	return ret;
}

/* The VM is paused: freeze its RAM, take its state and its own pages. */
static int capture(struct vm *vm, struct snapshot_job *job, const char *diff_base)
{
	uint64_t base_id = 0;
	int ret = diff_base ? check_diff_base(vm, diff_base, &base_id) : 0;

	if (!ret)
		ret = vm_capture(vm, true, &job->cap);
	if (!ret)
		ret = build_state(vm, job, base_id);
	if (!ret) {
		job->base_fd = fcntl(vm->mem.fd, F_DUPFD_CLOEXEC, 0);
		ret = job->base_fd < 0 ? -errno : 0;
	}
	return ret;
}

static struct snapshot_job *job_new(const char *dir, const char *diff_base, uint64_t mem_size)
{
	struct snapshot_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	pthread_mutex_init(&job->lock, NULL);
	job->base_fd = -1;
	job->mem_size = mem_size;
	job->diff = diff_base != NULL;
	snprintf(job->dir, sizeof(job->dir), "%s", dir);
	snprintf(job->tmp, sizeof(job->tmp), "%s.tmp-%d", dir, (int)getpid());
	if (diff_base && !realpath(diff_base, job->base_dir))
		snprintf(job->base_dir, sizeof(job->base_dir), "%s", diff_base);
	return job;
}

struct capture_args {
	struct snapshot_job *job;
	const char *diff_base;
};

static int capture_paused(struct vm *vm, void *arg)
{
	struct capture_args *a = arg;

	return capture(vm, a->job, a->diff_base);
}

static int pause_and_capture(struct vm *vm, struct snapshot_job *job, const char *diff_base)
{
	struct capture_args args = { job, diff_base };
	uint64_t t0 = now_ns();
	int ret = vm_while_paused(vm, capture_paused, &args);

	job->progress.paused_ns = now_ns() - t0;
	return ret;
}

int vm_snapshot_start(struct vm *vm, const char *dir, const char *diff_base,
		      struct snapshot_job **out)
{
	struct snapshot_job *job;
	struct stat st;
	int ret;

	if (!vm->vmm)
		return -EINVAL;
	if (stat(dir, &st) == 0) {
		pr_err("snapshot: %s exists already; choose a new directory", dir);
		return -EEXIST;
	}
	job = job_new(dir, diff_base, vm->mem.size);
	if (!job)
		return -ENOMEM;
	ret = pause_and_capture(vm, job, diff_base);
	if (!ret && mkdir(job->tmp, 0700) < 0)
		ret = -errno;
	if (!ret) {
		job->progress.bytes_total = snapio_data_bytes(job->base_fd, vm->mem.size, job->diff) +
					    job->cap.pages.pages * PAGE_SIZE;
		ret = -pthread_create(&job->thread, NULL, writer_thread, job);
	}
	if (ret < 0) {
		pr_err("snapshot %s: %s", dir, strerror(-ret));
		snapshot_job_free(job);
		return ret;
	}
	*out = job;
	return 0;
}

void snapshot_job_progress(struct snapshot_job *job, struct snapshot_progress *p)
{
	pthread_mutex_lock(&job->lock);
	*p = job->progress;
	pthread_mutex_unlock(&job->lock);
}

int snapshot_job_wait(struct snapshot_job *job)
{
	if (job->thread) {
		pthread_join(job->thread, NULL);
		job->thread = 0;
	}
	return job->progress.result;
}

void snapshot_job_free(struct snapshot_job *job)
{
	if (!job)
		return;
	snapshot_job_wait(job);
	if (job->base_fd >= 0)
		close(job->base_fd);
	vm_capture_free(&job->cap);
	free(job->state);
	pthread_mutex_destroy(&job->lock);
	free(job);
}
