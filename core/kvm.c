#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/cpuid.h"
#include "core/kvm.h"
#include "core/log.h"

/* What vm-fork needs from KVM, and why, so a missing one is explained. */
static const struct {
	long cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM in a host file mapping" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel PIC, IOAPIC and LAPIC" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel PIT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 VM set-up" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "the CPUID policy" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "SMP start-up and vCPU state" },
	{ KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", "saving pending events for forks" },
	{ KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS", "saving debug registers for forks" },
	{ KVM_CAP_XCRS, "KVM_CAP_XCRS", "saving XCR0 for forks" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK", "keeping guest time across forks" },
};

int kvm_ioctl_named(int fd, unsigned long req, void *arg, const char *name, int quiet_errno)
{
	int ret = ioctl(fd, req, arg);

	if (ret >= 0)
		return ret;
	ret = -errno;
	if (errno != EINTR && errno != quiet_errno)
		pr_err("%s: %s", name, strerror(errno));
	return ret;
}

int kvm_check_cap(int fd, long cap)
{
	int ret = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return ret < 0 ? 0 : ret;
}

static int open_dev_kvm(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		pr_err("%s does not exist: this host has no KVM (load kvm_intel or kvm_amd, or "
		       "enable nested virtualisation for this VM)", path);
		break;
	case EACCES:
	case EPERM:
		pr_err("%s: permission denied (run as root, or add your user to the group "
		       "that owns %s, usually 'kvm')", path, path);
		break;
	default:
		pr_err("cannot open %s: %s", path, strerror(errno));
	}
	return -errno;
}

static int check_caps(int fd)
{
	int missing = 0;

	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (kvm_check_cap(fd, required_caps[i].cap))
			continue;
		pr_err("KVM lacks %s, needed for %s", required_caps[i].name, required_caps[i].why);
		missing++;
	}
	return missing ? -ENOTSUP : 0;
}

/*
 * KVM emulates the TSC-deadline timer but leaves its CPUID bit (leaf 1, ECX
 * bit 24) for the VMM to set (api.rst). Without it Linux calibrates its LAPIC
 * timer against the PIT at boot; where that fails (nested KVM under QEMU's
 * TCG) it disables the LAPIC timer, its timeouts never expire, and a probe
 * that waits for one (atkbd) blocks reboot forever.
 */
static void add_tsc_deadline(struct kvm_host *kvm, struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *leaf1 = cpuid_find(c, 1, 0);

	if (leaf1 && kvm_check_cap(kvm->fd, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		leaf1->ecx |= 1u << 24;
}

static int load_supported_cpuid(struct kvm_host *kvm)
{
	/* Grow the buffer until KVM stops answering E2BIG. */
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		int ret;

		if (!c)
			return -ENOMEM;
		c->nent = n;
		ret = kvm_ioctl_quiet(kvm->fd, KVM_GET_SUPPORTED_CPUID, c, E2BIG);
		if (ret == 0) {
			add_tsc_deadline(kvm, c);
			kvm->supported_cpuid = c;
			return 0;
		}
		free(c);
		if (ret != -E2BIG)
			return ret;
	}
	return -E2BIG;
}

int kvm_host_open(struct kvm_host *kvm, const char *path)
{
	int ret, version;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open_dev_kvm(path ? path : "/dev/kvm");
	if (kvm->fd < 0)
		return kvm->fd;
	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		pr_err("KVM API version %d, vm-fork needs %d", version, KVM_API_VERSION);
		ret = -ENOTSUP;
		goto fail;
	}
	ret = check_caps(kvm->fd);
	if (ret < 0)
		goto fail;
	ret = kvm_ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret < 0)
		goto fail;
	kvm->vcpu_mmap_size = ret;
	kvm->max_vcpus = kvm_check_cap(kvm->fd, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = kvm_check_cap(kvm->fd, KVM_CAP_NR_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = 4; /* api.rst: assume 4 when the cap is absent */
	ret = load_supported_cpuid(kvm);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	close(kvm->fd);
	kvm->fd = -1;
	return ret;
}

void kvm_host_close(struct kvm_host *kvm)
{
	free(kvm->supported_cpuid);
	if (kvm->fd >= 0)
		close(kvm->fd);
	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = -1;
}
