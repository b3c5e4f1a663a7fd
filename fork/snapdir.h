/*
 * Snapshots on disk. A snapshot is a directory:
 *   state.dtb  the VM's state and metadata, a flattened device tree
 *              (state/statefile.h; `dtc -I dtb -O dts state.dtb` shows it)
 *   mem        guest RAM as a sparse file: pages never written are holes.
 *              Restoring maps it MAP_PRIVATE, so many VMs restored from one
 *              snapshot share its page cache.
 *   pages      a diff snapshot's list of the page ranges its mem holds; it
 *              restores on top of its base snapshot (whose path is in `base`).
 *   disk.*     a disk's overlays above its base file, flattened (a device's
 *              export() hook writes them, its import() reads them back).
 *
 * Taking one pauses the VM only as long as a fork does (the RAM is frozen as
 * a base, the state captured, the VM's own pages copied aside); the files are
 * written by a background thread while the VM runs on, into DIR.tmp-*, then
 * fsync'ed and renamed to DIR, so an interrupted snapshot leaves no DIR.
 */
#ifndef FORK_SNAPDIR_H
#define FORK_SNAPDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/memory.h"
#include "state/vm_snapshot.h"

struct vm;
struct vmm;
struct snapshot_job;

struct snapshot_progress {
	uint64_t bytes_done, bytes_total;
	uint64_t paused_ns;         /* how long the VM was paused */
	bool done;
	int result;                 /* 0 or -errno, once done */
};

/*
 * Start writing a snapshot of vm to dir (which must not exist). diff_base:
 * NULL, or the snapshot this VM was restored from, to write only the pages
 * changed since. Returns once the VM runs again (or stays paused, if it was).
 */
int vm_snapshot_start(struct vm *vm, const char *dir, const char *diff_base,
		      struct snapshot_job **job);
void snapshot_job_progress(struct snapshot_job *job, struct snapshot_progress *p);
/* Wait for the writer; returns its result. */
int snapshot_job_wait(struct snapshot_job *job);
void snapshot_job_free(struct snapshot_job *job);

/* A snapshot read back and checked, ready to restore from (snapdir_restore.c). */
struct snapshot_image {
	struct vm_snapshot state;
	struct kvm_cpuid2 *cpuid;   /* what vCPU 0 saw */
	uint64_t id, base_id;
	bool is_diff;
	char dir[PATH_MAX];         /* where it was read from: devices import their files */
	struct guest_mem mem;       /* fd only: the mem file (a diff: its base's) */
	int diff_fd;                /* a diff's own mem file, -1 otherwise */
	struct mem_ranges diff_pages;
};

/* Read and check everything: version, checksum, sizes against the mem file, CPUID. */
int snapshot_open(const char *dir, const struct kvm_cpuid2 *host_supported,
		  struct snapshot_image *img);
void snapshot_close(struct snapshot_image *img);
/*
 * A new VM in vmm from img, registered, paused; its identity: a fresh clone
 * id, child index index (1..), generation that of the snapshot + 1,
 * FORK_RESULT and FORK_FIRST_ID 0 (vm_become_clone()); console: a spec, its
 * "%u" made that id.
 */
int vm_restore(struct vmm *vmm, const struct snapshot_image *img, unsigned index,
	       const char *console, struct vm **out);

#endif
