/*
 * The KVM floors: what any VMM pays to get a VM of this size.
 *
 *  cold_vm   KVM_CREATE_VM + KVM_CREATE_VCPU + the guest RAM (memfd, mapped)
 *            + its memory slots, exactly as guest_mem_create/register lay it
 *            out. Teardown is not timed.
 *  map_base  into a prepared VM (irqchip, PIT, vCPU with its CPUID, memory
 *            slots over a reserved host range): mmap MAP_FIXED|MAP_PRIVATE of
 *            a base memfd over the slotted range (KVM invalidates it), then
 *            one full vCPU + VM state load. Reported as the sum and as its two
 *            parts (map_base.mmap, map_base.state).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/cpuid.h"
#include "core/kvm.h"
#include "core/layout.h"
#include "core/memory.h"
#include "state/state.h"
#include "tools/bench/bench.h"

/* ---- cold VM ---- */

static int cold_vm_once(const struct kvm_host *kvm, uint64_t size, uint64_t *ns)
{
	struct guest_mem mem;
	uint64_t t0 = now_ns();
	int vm_fd, vcpu_fd = -1, ret;

	vm_fd = kvm_ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		return vm_fd;
	ret = vcpu_fd = kvm_ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (ret >= 0)
		ret = guest_mem_create(&mem, size, NULL);
	if (ret >= 0) {
		ret = guest_mem_register(&mem, vm_fd);
		*ns = now_ns() - t0;
		guest_mem_destroy(&mem);
	}
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	close(vm_fd);
	return ret < 0 ? ret : 0;
}

int bench_cold_vm(struct bench_ctx *ctx, unsigned si)
{
	uint64_t size = ctx->cfg->sizes[si];
	unsigned iters = ctx->cfg->iters_cheap;
	struct samples s;
	int ret = 0;

	if (!ctx->have_kvm) {
		cell_note(ctx, ROW_COLD_VM, si, "no usable /dev/kvm");
		return -ENODEV;
	}
	if (samples_init(&s, iters) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < iters && !ret; i++) {
		uint64_t ns = 0;

		ret = cold_vm_once(&ctx->kvm, size, &ns);
		samples_add(&s, ns);
	}
	if (ret < 0)
		cell_note(ctx, ROW_COLD_VM, si, "failed: %s", strerror(-ret));
	else
		cell_set_samples(ctx, ROW_COLD_VM, si, &s);
	samples_free(&s);
	return ret;
}

/* ---- map base into a prepared VM ---- */

/* A warm VM as a fork would find it, plus the state it loads and the base it maps. */
struct prepared_vm {
	int vm_fd, vcpu_fd, base_fd;
	struct guest_mem mem;          /* reserved range with memory slots over it */
	struct vcpu_state *vcpu_st;    /* ~20 KiB: on the heap */
	struct vm_state vm_st;
};

/*
 * The state a fork child receives. This is the one place to change when the
 * way a fork loads state changes: today it is state/state.h's full load.
 */
static int prepared_load_state(const struct prepared_vm *p)
{
	int ret = vcpu_state_restore(p->vcpu_fd, p->vcpu_st);

	return ret < 0 ? ret : vm_state_restore(p->vm_fd, &p->vm_st);
}

static int prepared_vm_fd(const struct kvm_host *kvm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t ident = LAYOUT_KVM_IDENT_MAP;
	int fd = kvm_ioctl(kvm->fd, KVM_CREATE_VM, 0);
	int ret;

	if (fd < 0)
		return fd;
	ret = kvm_ioctl(fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS);
	if (!ret && kvm_check_cap(fd, KVM_CAP_SET_IDENTITY_MAP_ADDR))
		ret = kvm_ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	if (!ret)
		ret = kvm_ioctl(fd, KVM_CREATE_IRQCHIP, 0);
	if (!ret)
		ret = kvm_ioctl(fd, KVM_CREATE_PIT2, &pit);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static int prepared_vcpu(const struct kvm_host *kvm, int vm_fd)
{
	struct cpuid_mask none = { 0 };
	struct kvm_cpuid2 *cpuid = cpuid_for_vcpu(kvm->supported_cpuid, 0, 1, &none);
	int fd, ret;

	if (!cpuid)
		return -ENOMEM;
	fd = kvm_ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	ret = fd < 0 ? fd : kvm_ioctl(fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	if (ret < 0 && fd >= 0)
		close(fd);
	return ret < 0 ? ret : fd;
}

static int base_memfd(uint64_t size)
{
	int fd = memfd_create("bench-base", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void prepared_destroy(struct prepared_vm *p)
{
	if (p->vcpu_fd >= 0)
		close(p->vcpu_fd);
	if (p->vm_fd >= 0)
		close(p->vm_fd);
	if (p->base_fd >= 0)
		close(p->base_fd);
	guest_mem_destroy(&p->mem);
	free(p->vcpu_st);
}

static int prepared_create(struct bench_ctx *ctx, uint64_t size, struct prepared_vm *p)
{
	int ret;

	memset(p, 0, sizeof(*p));
	p->vm_fd = p->vcpu_fd = p->base_fd = -1;
	p->mem.fd = -1;
	p->vcpu_st = aligned_alloc(64, sizeof(*p->vcpu_st));
	if (!p->vcpu_st)
		return -ENOMEM;
	ret = p->vm_fd = prepared_vm_fd(&ctx->kvm);
	if (ret >= 0)
		ret = guest_mem_reserve(&p->mem, size);
	if (ret >= 0)
		ret = guest_mem_register(&p->mem, p->vm_fd);
	if (ret >= 0)
		ret = p->vcpu_fd = prepared_vcpu(&ctx->kvm, p->vm_fd);
	if (ret >= 0)
		ret = p->base_fd = base_memfd(size);
	/* The state to load: this VM's own, read once (a parent's is the same size). */
	if (ret >= 0)
		ret = vcpu_state_save(p->vcpu_fd, p->vm_fd, &ctx->msrs, p->vcpu_st);
	if (ret >= 0)
		ret = vm_state_save(p->vm_fd, &p->vm_st);
	return ret < 0 ? ret : 0;
}

static int map_base_once(const struct prepared_vm *p, uint64_t *map_ns, uint64_t *state_ns)
{
	uint64_t t0 = now_ns(), t1;
	void *host = mmap(p->mem.host, p->mem.size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, p->base_fd, 0);
	int ret;

	t1 = now_ns();
	if (host == MAP_FAILED)
		return -errno;
	ret = prepared_load_state(p);
	*map_ns = t1 - t0;
	*state_ns = now_ns() - t1;
	return ret;
}

static void map_base_note(struct bench_ctx *ctx, unsigned si, const char *why)
{
	cell_note(ctx, ROW_MAP_BASE, si, "%s", why);
	cell_note(ctx, ROW_MAP_MMAP, si, "%s", why);
	cell_note(ctx, ROW_MAP_STATE, si, "%s", why);
}

static int map_base_loop(struct bench_ctx *ctx, unsigned si, const struct prepared_vm *p)
{
	unsigned iters = ctx->cfg->iters_cheap;
	struct samples s[3] = { 0 };
	int ret = 0;

	for (unsigned k = 0; k < 3 && !ret; k++)
		ret = samples_init(&s[k], iters);
	for (unsigned i = 0; i < iters && !ret; i++) {
		uint64_t map_ns = 0, state_ns = 0;

		ret = map_base_once(p, &map_ns, &state_ns);
		samples_add(&s[0], map_ns + state_ns);
		samples_add(&s[1], map_ns);
		samples_add(&s[2], state_ns);
	}
	if (!ret) {
		cell_set_samples(ctx, ROW_MAP_BASE, si, &s[0]);
		cell_set_samples(ctx, ROW_MAP_MMAP, si, &s[1]);
		cell_set_samples(ctx, ROW_MAP_STATE, si, &s[2]);
	}
	for (unsigned k = 0; k < 3; k++)
		samples_free(&s[k]);
	return ret;
}

int bench_map_base(struct bench_ctx *ctx, unsigned si)
{
	struct prepared_vm p;
	char why[BENCH_NOTE_MAX];
	int ret;

	if (!ctx->have_kvm || !ctx->have_msrs) {
		map_base_note(ctx, si, ctx->have_kvm ? "no MSR list" : "no usable /dev/kvm");
		return -ENODEV;
	}
	ret = prepared_create(ctx, ctx->cfg->sizes[si], &p);
	if (ret < 0)
		snprintf(why, sizeof(why), "prepared VM: %s", strerror(-ret));
	else if ((ret = map_base_loop(ctx, si, &p)) < 0)
		snprintf(why, sizeof(why), "failed: %s", strerror(-ret));
	if (ret < 0)
		map_base_note(ctx, si, why);
	prepared_destroy(&p);
	return ret;
}
