/*
 * The control device (devices/ctl_abi.h). Every access is an aligned 8-byte
 * load or store; anything else is counted and ignored, so a buggy or hostile
 * guest can never make the VMM read outside guest RAM or stop it by mistake.
 * Host callbacks run without the device lock: exit() may stop vCPUs, one of
 * which may itself be waiting for the lock.
 */
#include <errno.h>
#include <string.h>

#include "devices/ctl.h"
#include "devices/ctl_abi.h"

#define CTL_REG_SIZE 8

void ctl_init(struct ctl_dev *ctl, const struct guest_mem *mem, const struct ctl_host *host,
	      uint64_t ncpus)
{
	memset(ctl, 0, sizeof(*ctl));
	pthread_mutex_init(&ctl->lock, NULL);
	ctl->mem = mem;
	if (host)
		ctl->host = *host;
	ctl->ncpus = ncpus;
}

void ctl_destroy(struct ctl_dev *ctl)
{
	pthread_mutex_destroy(&ctl->lock);
}

void ctl_count_bad(struct ctl_dev *ctl)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->bad_accesses++;
	pthread_mutex_unlock(&ctl->lock);
}

/* A write-only or unknown register reads as 0 and is counted. */
static void ctl_read_reg(struct ctl_dev *ctl, uint64_t offset, uint64_t *val)
{
	pthread_mutex_lock(&ctl->lock);
	switch (offset) {
	case VMFORK_CTL_MAGIC: *val = VMFORK_CTL_MAGIC_VALUE; break;
	case VMFORK_CTL_VERSION: *val = VMFORK_CTL_VERSION_VALUE; break;
	case VMFORK_CTL_CLONE_ID: *val = ctl->clone_id; break;
	case VMFORK_CTL_GENERATION: *val = ctl->generation; break;
	case VMFORK_CTL_NCPUS: *val = ctl->ncpus; break;
	case VMFORK_CTL_FORK_RESULT: *val = ctl->fork_result; break;
	case VMFORK_CTL_CHILD_INDEX: *val = ctl->child_index; break;
	case VMFORK_CTL_FORK_FIRST_ID: *val = ctl->fork_first_id; break;
	case VMFORK_CTL_RESETS: *val = ctl->resets; break;
	case VMFORK_CTL_SNAPSHOT_RESULT: *val = ctl->mark_result; break;
	case VMFORK_CTL_FUZZ_INPUT: *val = ctl->fuzz.input_gpa; break;
	case VMFORK_CTL_FUZZ_INPUT_MAX: *val = ctl->fuzz.input_max; break;
	case VMFORK_CTL_FUZZ_MAP: *val = ctl->fuzz.map_gpa; break;
	case VMFORK_CTL_FUZZ_MAP_SIZE: *val = ctl->fuzz.map_size; break;
	default:
		*val = 0;
		ctl->bad_accesses++;
		break;
	}
	pthread_mutex_unlock(&ctl->lock);
}

/*
 * Print the struct vmfork_log_msg at gpa. Both the header and the text are
 * checked against RAM, and copied once so the guest cannot change them while
 * the host prints.
 */
static void ctl_log(struct ctl_dev *ctl, uint64_t gpa)
{
	char text[VMFORK_LOG_MAX + 1];
	struct vmfork_log_msg hdr;
	const void *src;
	uint32_t len;

	src = gpa_ptr(ctl->mem, gpa, sizeof(hdr));
	if (!src) {
		ctl_count_bad(ctl);
		return;
	}
	memcpy(&hdr, src, sizeof(hdr));
	len = hdr.len < VMFORK_LOG_MAX ? hdr.len : VMFORK_LOG_MAX;
	/* gpa + 8 cannot overflow: gpa_ptr() found 8 bytes of RAM at gpa. */
	src = len ? gpa_ptr(ctl->mem, gpa + sizeof(hdr), len) : text;
	if (!src) {
		ctl_count_bad(ctl);
		return;
	}
	memcpy(text, src, len);
	text[len] = '\0';
	if (ctl->host.log)
		ctl->host.log(ctl->host.opaque, text, len);
}

static void ctl_fork(struct ctl_dev *ctl, uint64_t count)
{
	if (ctl->host.fork) {
		ctl->host.fork(ctl->host.opaque, count);
		return;
	}
	ctl_set_fork_result(ctl, -ENOSYS, 0);
}

void ctl_set_fork_result(struct ctl_dev *ctl, int64_t result, uint64_t first_id)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->fork_result = (uint64_t)result;
	ctl->fork_first_id = first_id;
	pthread_mutex_unlock(&ctl->lock);
}

void ctl_set_mark_result(struct ctl_dev *ctl, int64_t result)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->mark_result = (uint64_t)result;
	pthread_mutex_unlock(&ctl->lock);
}

void ctl_identity(struct ctl_dev *ctl, uint64_t *generation, uint64_t *child_index)
{
	pthread_mutex_lock(&ctl->lock);
	*generation = ctl->generation;
	*child_index = ctl->child_index;
	pthread_mutex_unlock(&ctl->lock);
}

void ctl_set_fuzz(struct ctl_dev *ctl, const struct ctl_fuzz_info *info)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->fuzz = *info;
	pthread_mutex_unlock(&ctl->lock);
}

uint64_t ctl_count_reset(struct ctl_dev *ctl)
{
	uint64_t resets;

	pthread_mutex_lock(&ctl->lock);
	resets = ++ctl->resets;
	pthread_mutex_unlock(&ctl->lock);
	return resets;
}

void ctl_save(struct ctl_dev *ctl, struct ctl_state *st)
{
	pthread_mutex_lock(&ctl->lock);
	*st = (struct ctl_state){
		.clone_id = ctl->clone_id, .generation = ctl->generation,
		.child_index = ctl->child_index, .fork_result = ctl->fork_result,
		.fork_first_id = ctl->fork_first_id,
	};
	pthread_mutex_unlock(&ctl->lock);
}

void ctl_restore(struct ctl_dev *ctl, const struct ctl_state *st)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->clone_id = st->clone_id;
	ctl->generation = st->generation;
	ctl->child_index = st->child_index;
	ctl->fork_result = st->fork_result;
	ctl->fork_first_id = st->fork_first_id;
	pthread_mutex_unlock(&ctl->lock);
}

static void ctl_write_reg(struct ctl_dev *ctl, uint64_t offset, uint64_t val)
{
	switch (offset) {
	case VMFORK_CTL_EXIT:
		if (ctl->host.exit)
			ctl->host.exit(ctl->host.opaque, (int)(val & 0xff));
		break;
	case VMFORK_CTL_LOG: ctl_log(ctl, val); break;
	case VMFORK_CTL_REPORT:
		if (ctl->host.report)
			ctl->host.report(ctl->host.opaque, val);
		break;
	case VMFORK_CTL_FORK: ctl_fork(ctl, val); break;
	case VMFORK_CTL_SNAPSHOT:
		if (ctl->host.mark)
			ctl->host.mark(ctl->host.opaque, val);
		else
			ctl_set_mark_result(ctl, -ENOSYS);
		break;
	case VMFORK_CTL_RESET:
		if (ctl->host.reset)
			ctl->host.reset(ctl->host.opaque);
		break;
	case VMFORK_CTL_FUZZ_DONE:
		if (ctl->host.fuzz_done)
			ctl->host.fuzz_done(ctl->host.opaque);
		else
			ctl_count_bad(ctl);
		break;
	case VMFORK_CTL_FUZZ_CRASH:
		if (ctl->host.fuzz_crash)
			ctl->host.fuzz_crash(ctl->host.opaque, val);
		else
			ctl_count_bad(ctl);
		break;
	default: ctl_count_bad(ctl); break;
	}
}

static void ctl_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct ctl_dev *ctl = dev;
	uint64_t val = 0;

	if (len != CTL_REG_SIZE || offset % CTL_REG_SIZE) {
		if (!is_write)
			memset(data, 0, len);
		ctl_count_bad(ctl);
		return;
	}
	if (is_write) {
		memcpy(&val, data, sizeof(val)); /* x86 is little-endian, like the ABI */
		ctl_write_reg(ctl, offset, val);
		return;
	}
	ctl_read_reg(ctl, offset, &val);
	memcpy(data, &val, sizeof(val));
}

const struct bus_dev_ops ctl_bus_ops = {
	.name = "vmfork-ctl",
	.io = ctl_io,
};
