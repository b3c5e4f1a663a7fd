/*
 * A clone worker is a trust boundary (fork/procmsg.h): given garbage it
 * answers with an error, exits PROCMSG_EXIT_REFUSED and harms no one; given
 * the same job unspoiled, it runs the clone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fork/procfork.h"
#include "fork/procmsg.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"
#include "tests/procfork_harness.h"

static struct fork_env env;

/* A valid job for the running template, to spoil one thing at a time. */
static struct {
	struct procmsg_shape shape;
	struct procmsg_job job;
	int base_fd;                /* the template's frozen RAM (its own fd) */
	int state_fd;
	uint8_t *state;             /* the state file's bytes */
	size_t state_len;
	unsigned nranges;
} ok;

static void capture_state(void)
{
	struct vm_snapshot *snap;
	struct mem_ranges *pages;
	struct kvm_cpuid2 *cpuid;
	struct fork_stats st = { 0 };

	cr_assert_eq(vm_pause(env.root), 0);
	cr_assert_eq(fork_capture(env.root, &snap, &pages, &st), 0);
	cpuid = vm_cpuid(env.root);
	cr_assert(cpuid);
	ok.state_fd = procmsg_state_create(snap, cpuid, pages, &env.root->mem);
	free(cpuid);
	cr_assert_geq(ok.state_fd, 0, "state file: %d", ok.state_fd);
	ok.nranges = pages->n;
	ok.job.generation = snap->ctl.generation + 1;
	cr_assert_eq(vm_resume(env.root), 0);
}

static void setup_template(void)
{
	struct stat st;

	SKIP_WITHOUT_KVM();
	fenv_boot(&env, "wait_fork", "timeout_ms=120000", 1, 64 * MiB);
	cr_assert(fenv_wait_reports(env.root, 1, 10));
	capture_state();            /* freezes the base */
	close(ok.state_fd);
	/* Ranges to spoil: pages the guest wrote since the freeze. */
	cr_assert(fenv_wait_private(env.root, 30), "the template wrote no page after the freeze");
	capture_state();
	cr_assert_gt(ok.nranges, 0, "the template wrote no page after the freeze");
	cr_assert_eq(fstat(ok.state_fd, &st), 0);
	ok.state_len = (size_t)st.st_size;
	ok.state = malloc(ok.state_len);
	cr_assert_eq(pread(ok.state_fd, ok.state, ok.state_len, 0), (ssize_t)ok.state_len);
	ok.base_fd = env.root->mem.fd;
	memset(&ok.shape, 0, sizeof(ok.shape));
	procmsg_init(&ok.shape.hdr, PROCMSG_SHAPE, sizeof(ok.shape), 0);
	ok.shape.mem_size = env.root->mem.size;
	ok.shape.ncpus = 1;
	procmsg_init(&ok.job.hdr, PROCMSG_JOB, sizeof(ok.job), 0);
	/* Id 8 exits 0x48: not PROCMSG_EXIT_REFUSED (0x41, which clone 1 of wait_fork exits). */
	ok.job.clone_id = vmm_alloc_ids(&env.vmm, 8) + 7;
	ok.job.parent_id = 0;
	ok.job.child_index = 1;
	strcpy(ok.job.console, "none");
}

static void teardown_template(void)
{
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "the template ran on throughout");
	close(ok.state_fd);
	free(ok.state);
	fenv_destroy(&env);
}

/* A worker with a warm shell of the template's shape. */
static int warm_worker(pid_t *pid, const struct procmsg_shape *shape, int want_ready)
{
	int sock;

	cr_assert_eq(proc_worker_spawn(pfh_worker_cmd(), pid, &sock), 0);
	cr_assert_eq(procmsg_send(sock, shape, sizeof(*shape), NULL, 0), 0);
	cr_assert_eq(procmsg_recv_status(sock, PROCMSG_READY, 30000), want_ready, "READY");
	return sock;
}

/* Send msg (len bytes, nfds fds): the worker must answer want, then exit refused. */
static void expect_refusal(const char *what, const void *msg, uint32_t len, const int *fds,
			   unsigned nfds, int want)
{
	pid_t pid;
	int sock = warm_worker(&pid, &ok.shape, 0);

	cr_assert_eq(procmsg_send(sock, msg, len, fds, nfds), 0, "%s: send", what);
	cr_assert_eq(procmsg_recv_status(sock, PROCMSG_REPLY, 30000), want, "%s: the answer", what);
	close(sock);
	cr_assert_eq(pfh_wait(pid, 30), PROCMSG_EXIT_REFUSED, "%s: the worker's exit", what);
	cr_assert_eq(vm_run_state(env.root), VM_STATE_RUNNING, "%s: the template runs on", what);
}

static void refuse_job(const char *what, const struct procmsg_job *job, int want)
{
	int fds[2] = { ok.base_fd, ok.state_fd };

	expect_refusal(what, job, sizeof(*job), fds, 2, want);
}

Test(procfork, worker_refuses_bad_messages, .timeout = 180, .init = setup_template,
     .fini = teardown_template)
{
	int fds[2] = { ok.base_fd, ok.state_fd }, swapped[2] = { ok.state_fd, ok.base_fd };
	struct procmsg_job job;
	uint8_t longer[sizeof(job) + 64] = { 0 };

	job = ok.job, job.hdr.magic ^= 1;
	refuse_job("bad magic", &job, -EPROTO);
	job = ok.job, job.hdr.version = PROCMSG_VERSION + 1;
	refuse_job("other version", &job, -EPROTONOSUPPORT);
	job = ok.job, job.hdr.type = PROCMSG_SHAPE;
	refuse_job("wrong type", &job, -EPROTO);
	job = ok.job, job.hdr.size = sizeof(job) - 1;
	refuse_job("wrong size field", &job, -EPROTO);
	expect_refusal("short message", &ok.job, sizeof(ok.job) / 2, fds, 2, -EBADMSG);
	memcpy(longer, &ok.job, sizeof(ok.job));
	expect_refusal("long message", longer, sizeof(longer), fds, 2, -EMSGSIZE);
	expect_refusal("state fd missing", &ok.job, sizeof(ok.job), fds, 1, -EBADMSG);
	expect_refusal("no fds", &ok.job, sizeof(ok.job), fds, 0, -EBADMSG);
	expect_refusal("fds in the wrong order", &ok.job, sizeof(ok.job), swapped, 2, -EINVAL);
	job = ok.job, memset(job.console, 'x', sizeof(job.console));
	refuse_job("console without NUL", &job, -EINVAL);
	job = ok.job, job.child_index = 0;
	refuse_job("child index 0", &job, -EINVAL);
	job = ok.job, job.generation++;
	refuse_job("generation not the state's + 1", &job, -EINVAL);
}

static int memfd_of(const void *buf, size_t len, size_t size)
{
	int fd = memfd_create("bad", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	return fd;
}

/* The state file with its bytes changed by spoil (and cut to len). */
static void refuse_state(const char *what, void (*spoil)(uint8_t *state), size_t len, int want)
{
	uint8_t *copy = malloc(ok.state_len);
	int fds[2] = { ok.base_fd, -1 };

	memcpy(copy, ok.state, ok.state_len);
	if (spoil)
		spoil(copy);
	fds[1] = memfd_of(copy, len, len);
	expect_refusal(what, &ok.job, sizeof(ok.job), fds, 2, want);
	close(fds[1]);
	free(copy);
}

static struct procmsg_state_hdr *hdr_of(uint8_t *state)
{
	return (struct procmsg_state_hdr *)state;
}

static void older_version(uint8_t *s) { hdr_of(s)->version = 1; }
static void bigger_blob(uint8_t *s) { hdr_of(s)->blob_size += 64; }
static void huge_blob(uint8_t *s) { hdr_of(s)->blob_size = 1ULL << 40; }
static void two_cpus(uint8_t *s) { hdr_of(s)->ncpus = 2; }
static void bad_magic(uint8_t *s) { hdr_of(s)->magic = 0; }
static void more_pages(uint8_t *s) { hdr_of(s)->pages_bytes += 4096; }
static void too_many_ranges(uint8_t *s) { hdr_of(s)->nranges = 0xffffffffu; }

/* Where procmsg.c's layout puts the FDT state, and the ranges after it. */
static size_t blob_at(void)
{
	return (sizeof(struct procmsg_state_hdr) + 63) & ~(size_t)63;
}

static uint64_t *first_range(uint8_t *s)
{
	return (uint64_t *)(s + ((blob_at() + hdr_of(s)->blob_size + 63) & ~(size_t)63));
}

/* A byte of a register deep in the FDT: its checksum no longer holds. */
static void flipped_state_byte(uint8_t *s) { s[blob_at() + hdr_of(s)->blob_size / 2] ^= 0x40; }
/* The FDT's own magic: not a device tree at all. */
static void not_a_tree(uint8_t *s) { s[blob_at()] ^= 0xff; }

static void range_past_ram(uint8_t *s) { first_range(s)[0] = env.root->mem.size; }
static void range_unaligned(uint8_t *s) { first_range(s)[0] += 1; }
static void range_wraps(uint8_t *s) { first_range(s)[1] = UINT64_MAX - 4095; }

Test(procfork, worker_refuses_bad_state_files, .timeout = 180, .init = setup_template,
     .fini = teardown_template)
{
	refuse_state("bad magic", bad_magic, ok.state_len, -EBADMSG);
	refuse_state("an older version (raw structs)", older_version, ok.state_len, -EBADMSG);
	refuse_state("a bigger state than the file holds", bigger_blob, ok.state_len, -EBADMSG);
	refuse_state("a state of 1 TiB", huge_blob, ok.state_len, -EBADMSG);
	refuse_state("a flipped byte in the state", flipped_state_byte, ok.state_len, -EBADMSG);
	refuse_state("a state that is no device tree", not_a_tree, ok.state_len, -EBADMSG);
	refuse_state("two vCPUs for a one-vCPU shell", two_cpus, ok.state_len, -EINVAL);
	refuse_state("more pages than the file holds", more_pages, ok.state_len, -EBADMSG);
	refuse_state("2^32 - 1 ranges", too_many_ranges, ok.state_len, -EBADMSG);
	refuse_state("truncated", NULL, ok.state_len - 4096, -EBADMSG);
	refuse_state("header only", NULL, sizeof(struct procmsg_state_hdr), -EBADMSG);
	refuse_state("empty", NULL, 0, -EBADMSG);
	refuse_state("range past the RAM", range_past_ram, ok.state_len, -EBADMSG);
	refuse_state("unaligned range", range_unaligned, ok.state_len, -EBADMSG);
	refuse_state("range that wraps", range_wraps, ok.state_len, -EBADMSG);
}

Test(procfork, worker_refuses_bad_bases_and_shapes, .timeout = 180, .init = setup_template,
     .fini = teardown_template)
{
	size_t size = env.root->mem.size;
	struct procmsg_shape shape;
	int fds[2] = { -1, ok.state_fd };
	pid_t pid;
	int sock;

	fds[0] = memfd_of("", 0, size / 2);
	fcntl(fds[0], F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
	expect_refusal("base of half the size", &ok.job, sizeof(ok.job), fds, 2, -EINVAL);
	close(fds[0]);
	fds[0] = memfd_of("", 0, size);
	expect_refusal("base not sealed", &ok.job, sizeof(ok.job), fds, 2, -EINVAL);
	close(fds[0]);
	fds[0] = ok.state_fd;
	expect_refusal("state file as the base", &ok.job, sizeof(ok.job), fds, 2, -EINVAL);
	shape = ok.shape, shape.ncpus = 0;
	sock = warm_worker(&pid, &shape, -EINVAL);
	close(sock);
	cr_assert_eq(pfh_wait(pid, 30), PROCMSG_EXIT_REFUSED, "a shape of 0 vCPUs");
	shape = ok.shape, shape.mask.n = CPUID_MAX_MASKS + 1;
	sock = warm_worker(&pid, &shape, -EINVAL);
	close(sock);
	cr_assert_eq(pfh_wait(pid, 30), PROCMSG_EXIT_REFUSED, "a CPUID mask of too many bits");
}

/* The control: the very job the others spoil runs a clone. */
Test(procfork, worker_runs_the_unspoiled_job, .timeout = 120, .init = setup_template,
     .fini = teardown_template)
{
	int fds[2] = { ok.base_fd, ok.state_fd };
	pid_t pid;
	int sock = warm_worker(&pid, &ok.shape, 0);

	cr_assert_eq(procmsg_send(sock, &ok.job, sizeof(ok.job), fds, 2), 0);
	cr_assert_eq(procmsg_recv_status(sock, PROCMSG_REPLY, 30000), 0);
	close(sock);
	cr_assert_eq(ok.job.clone_id, 8, "ids 1..8 were allocated");
	cr_assert_eq(pfh_wait(pid, 30), 0x48, "the clone's own exit status");
}
