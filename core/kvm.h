/* The host's KVM: /dev/kvm, its capabilities, and the one wrapper every KVM ioctl goes through. */
#ifndef CORE_KVM_H
#define CORE_KVM_H

#include <linux/kvm.h>
#include <stdint.h>

struct kvm_host {
	int fd;                   /* /dev/kvm */
	int vcpu_mmap_size;       /* size of each vCPU's kvm_run mapping */
	int max_vcpus;
	struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID, owned */
};

/*
 * Open /dev/kvm (path NULL: the default), check the API version and every
 * capability vm-fork relies on. Returns 0 or -errno after printing what is
 * missing and what to do about it.
 */
int kvm_host_open(struct kvm_host *kvm, const char *path);
void kvm_host_close(struct kvm_host *kvm);

/* KVM_CHECK_EXTENSION on any KVM fd; returns the value, 0 when absent. */
int kvm_check_cap(int fd, long cap);

/*
 * Every KVM ioctl goes through here. Returns the ioctl's non-negative result
 * or -errno; on failure prints the ioctl's name unless the errno is one the
 * caller expects (quiet_errno, 0 for none). EINTR is never printed.
 */
int kvm_ioctl_named(int fd, unsigned long req, void *arg, const char *name, int quiet_errno);

#define kvm_ioctl(fd, req, arg) kvm_ioctl_named((fd), (req), (void *)(arg), #req, 0)
#define kvm_ioctl_quiet(fd, req, arg, quiet) \
	kvm_ioctl_named((fd), (req), (void *)(arg), #req, (quiet))

#endif
