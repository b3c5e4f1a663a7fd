/*
 * What a VMM and its clone workers say to each other (fork/procfork.h,
 * tools/cmd_worker.c): small fixed-size messages on a SOCK_SEQPACKET Unix
 * socket, file descriptors passed with SCM_RIGHTS, and a state file (a sealed
 * memfd) that holds a captured VM state and the parent's private pages.
 *
 *   VMM -> worker   SHAPE  mem size, vCPUs, CPUID mask: the worker makes a shell
 *   worker -> VMM   READY  status of that (0: the shell waits for a job)
 *   VMM -> worker   JOB    identity, console, backends; fds: the frozen base, the state file
 *   worker -> VMM   REPLY  0 (the clone is loaded and starts now) or -errno (refused:
 *                          the worker exits PROCMSG_EXIT_REFUSED)
 *
 * Both ends are the same binary, so structs travel as they are, but a worker
 * trusts no byte it receives: every message and every length is checked.
 */
#ifndef FORK_PROCMSG_H
#define FORK_PROCMSG_H

#include <stdint.h>

#include "core/cpuid.h"
#include "core/device.h"
#include "core/memory.h"
#include "state/vm_snapshot.h"

#define PROCMSG_MAGIC   0x6b726f66636f7270ULL /* "procfork" */
/* 2: the state is a state file's FDT (state/statefile.h); 3: a job names the clone's backends */
#define PROCMSG_VERSION 3

/* A worker that refused its shape or its job exits with this (sysexits' EX_DATAERR). */
#define PROCMSG_EXIT_REFUSED 65

enum procmsg_type { PROCMSG_SHAPE = 1, PROCMSG_READY, PROCMSG_JOB, PROCMSG_REPLY };

struct procmsg_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t type;              /* enum procmsg_type */
	uint32_t size;              /* of the whole message */
	int32_t status;             /* READY, REPLY: 0 or -errno; else 0 */
};

struct procmsg_shape {
	struct procmsg_hdr hdr;
	uint64_t mem_size;
	uint32_t ncpus, pad;
	struct cpuid_mask mask;
};

#define PROCMSG_CONSOLE_MAX 256

struct procmsg_job {
	struct procmsg_hdr hdr;
	uint64_t clone_id, parent_id, generation, child_index;
	char console[PROCMSG_CONSOLE_MAX]; /* NUL-terminated console spec */
	/* A fork request's backend per device (core/device.h rebind), NUL-terminated; "": the state's */
	char devices[DEVICE_MAX][DEVICE_ARG_MAX];
};

enum { PROCMSG_JOB_BASE_FD, PROCMSG_JOB_STATE_FD, PROCMSG_JOB_NFDS };

/* Fill in a header for a message of this type and size. */
void procmsg_init(struct procmsg_hdr *hdr, enum procmsg_type type, uint32_t size, int status);
/*
 * Send one message with nfds fds (0..PROCMSG_JOB_NFDS). Returns 0 or -errno
 * (-EPIPE: the peer is gone; never SIGPIPE).
 */
int procmsg_send(int sock, const void *msg, uint32_t size, const int *fds, unsigned nfds);
/*
 * Receive one message of exactly this type and size with exactly nfds fds
 * (returned close-on-exec in fds[]), waiting up to timeout_ms (-1: forever).
 * Returns 0, or -errno with every received fd closed: -ECONNRESET (the peer
 * closed), -ETIMEDOUT, -EMSGSIZE (too long), -EBADMSG (wrong length or fds),
 * -EPROTO (bad magic, type or size field), -EPROTONOSUPPORT (other version).
 */
int procmsg_recv(int sock, void *msg, uint32_t size, enum procmsg_type type, int *fds,
		 unsigned nfds, int timeout_ms);
/* A READY or REPLY: its status, or -errno when it could not be received. */
int procmsg_send_status(int sock, enum procmsg_type type, int status);
int procmsg_recv_status(int sock, enum procmsg_type type, int timeout_ms);

/* Whether a received shape / job is one a worker can use (values, not the header). */
int procmsg_check_shape(const struct procmsg_shape *shape);
int procmsg_check_job(const struct procmsg_job *job);
/*
 * Whether fd can be a clone's frozen base of mem_size bytes: a regular file
 * of that size, and when it is a memfd, sealed against writes and resizing.
 */
int procmsg_check_base(int fd, uint64_t mem_size);

/*
 * The state file: this header; the state as the same FDT a snapshot on disk
 * keeps in its state.dtb (state/statefile.h: snapfile_build(), checked by
 * snapfile_parse(), the validator the fuzzer runs); the ranges { u64 off,
 * len }; the pages. Each part starts 64-byte aligned, the pages page-aligned.
 */
struct procmsg_state_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;          /* sizeof(struct procmsg_state_hdr) */
	uint32_t ncpus;
	uint32_t nranges;
	uint64_t blob_size;         /* the FDT's bytes, at most PROCMSG_MAX_BLOB */
	uint64_t mem_size;
	uint64_t pages_bytes;       /* sum of the ranges' lengths */
	uint64_t file_size;         /* the whole file */
};

#define PROCMSG_MAX_BLOB (16u << 20)

/*
 * A sealed memfd holding snap (with cpuid, vCPU 0's CPUID) and the pages of
 * src that ranges name (the parent is paused: they cannot change while they
 * are copied). Returns the fd (close-on-exec) or -errno.
 */
int procmsg_state_create(const struct vm_snapshot *snap, const struct kvm_cpuid2 *cpuid,
			 const struct mem_ranges *ranges, const struct guest_mem *src);
/*
 * Read and check a state file for a VM of mem_size bytes and ncpus vCPUs:
 * snap (vm_snapshot_free() it) and ranges (mem_ranges_free() them) are filled,
 * *pages_off is where their contents start. Returns 0 or -errno (-EINVAL,
 * -EBADMSG for a file that does not hold what its header says).
 */
int procmsg_state_read(int fd, uint64_t mem_size, unsigned ncpus, struct vm_snapshot *snap,
		       struct mem_ranges *ranges, uint64_t *pages_off);
/* Copy the pages of a checked state file into dst at their places. */
int procmsg_state_copy_pages(int fd, const struct mem_ranges *ranges, uint64_t pages_off,
			     struct guest_mem *dst);

#endif
