#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cpuid.h"
#include "core/kvm.h"
#include "core/log.h"
#include "fork/clone.h"
#include "fork/snapdir.h"
#include "fork/snapdir_io.h"
#include "fork/vmm.h"
#include "state/statefile.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define STATE_MAX_FILE (16 * MiB)

/* Feature bits a snapshot's guest may have seen; each must be supported here. */
static const struct {
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint32_t ignore; /* bits that follow guest state or our policy, not the host */
} feature_words[] = {
	{ 1, 0, CPUID_ECX, (1u << 27) | (1u << 31) }, /* OSXSAVE, hypervisor */
	{ 1, 0, CPUID_EDX, 1u << 28 },                /* HTT: our topology */
	{ 7, 0, CPUID_EBX, 0 },
	{ 7, 0, CPUID_ECX, 1u << 4 },                 /* OSPKE */
	{ 7, 0, CPUID_EDX, 0 },
	{ 0xd, 1, CPUID_EAX, 0 },
	{ 0x80000001, 0, CPUID_ECX, 0 },
	{ 0x80000001, 0, CPUID_EDX, 0 },
};

static uint32_t reg_value(const struct kvm_cpuid_entry2 *e, enum cpuid_reg reg)
{
	const uint32_t v[] = { e->eax, e->ebx, e->ecx, e->edx };

	return e ? v[reg] : 0;
}

static int check_cpuid(struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *host)
{
	static const char *const names[] = { "eax", "ebx", "ecx", "edx" };
	int bad = 0;

	for (size_t i = 0; i < sizeof(feature_words) / sizeof(feature_words[0]); i++) {
		const typeof(feature_words[0]) *w = &feature_words[i];
		struct kvm_cpuid_entry2 *s = cpuid_find(saved, w->leaf, w->subleaf);
		struct kvm_cpuid_entry2 *h = cpuid_find((struct kvm_cpuid2 *)host, w->leaf, w->subleaf);
		uint32_t missing;

		if (!s)
			continue;
		missing = reg_value(s, w->reg) & ~(h ? reg_value(h, w->reg) : 0) & ~w->ignore;
		if (missing) {
			pr_err("snapshot: its guest saw CPUID %#x.%u %s bits %#x that this host "
			       "cannot give", w->leaf, w->subleaf, names[w->reg], missing);
			bad++;
		}
	}
	return bad ? -ENOTSUP : 0;
}

static int open_mem(const char *dir, uint64_t size, int *fd)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/mem", dir);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		pr_err("snapshot %s: no memory file: %s", dir, strerror(errno));
		return -errno;
	}
	/* A short file would SIGBUS the guest's first access past its end. */
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		pr_err("snapshot %s: mem is %lld bytes, the state says %llu", dir,
		       (long long)st.st_size, (unsigned long long)size);
		return -EBADMSG;
	}
	return 0;
}

static int read_state(const char *dir, struct snapshot_image *img, struct snap_meta *meta)
{
	void *blob;
	size_t len;
	int ret = snapio_read_file(dir, "state.dtb", STATE_MAX_FILE, &blob, &len);

	if (ret < 0) {
		pr_err("snapshot %s: cannot read state.dtb: %s", dir, strerror(-ret));
		return ret;
	}
	ret = snapfile_parse(blob, len, &img->state, meta, &img->cpuid);
	free(blob);
	if (ret < 0)
		pr_err("snapshot %s: state.dtb refused", dir);
	return ret;
}

/* A diff: its base (a full snapshot whose id it names) and its own pages. */
static int open_diff(const char *dir, const struct kvm_cpuid2 *host, struct snapshot_image *img,
		     const struct snap_meta *meta)
{
	struct snapshot_image base;
	char *base_dir;
	size_t len;
	int ret = snapio_read_file(dir, "base", PATH_MAX - 1, (void **)&base_dir, &len);

	if (ret < 0)
		return ret;
	base_dir = realloc(base_dir, len + 1);
	base_dir[len] = '\0';
	ret = snapshot_open(base_dir, host, &base);
	if (!ret && (base.is_diff || base.id != meta->base_id || base.mem.size != img->mem.size)) {
		pr_err("snapshot %s: its base %s is not the snapshot it was taken on", dir, base_dir);
		snapshot_close(&base);
		ret = -EBADMSG;
	}
	free(base_dir);
	if (ret < 0)
		return ret;
	img->diff_fd = img->mem.fd;
	img->mem.fd = base.mem.fd;
	base.mem.fd = -1;
	snapshot_close(&base);
	return snapio_read_ranges(dir, "pages", img->mem.size, &img->diff_pages);
}

int snapshot_open(const char *dir, const struct kvm_cpuid2 *host, struct snapshot_image *img)
{
	struct snap_meta meta;
	int ret;

	memset(img, 0, sizeof(*img));
	img->mem.fd = img->diff_fd = -1;
	if (snprintf(img->dir, sizeof(img->dir), "%s", dir) >= (int)sizeof(img->dir))
		return -ENAMETOOLONG;
	ret = read_state(dir, img, &meta);
	if (!ret) {
		img->id = meta.id;
		img->base_id = meta.base_id;
		img->is_diff = meta.is_diff;
		img->mem.size = meta.mem_size;
		ret = open_mem(dir, meta.mem_size, &img->mem.fd);
	}
	if (!ret && host)
		ret = check_cpuid(img->cpuid, host);
	if (!ret && img->is_diff)
		ret = open_diff(dir, host, img, &meta);
	if (ret < 0)
		snapshot_close(img);
	return ret;
}

void snapshot_close(struct snapshot_image *img)
{
	vm_snapshot_free(&img->state);
	free(img->cpuid);
	if (img->mem.fd >= 0)
		close(img->mem.fd);
	if (img->diff_fd >= 0)
		close(img->diff_fd);
	mem_ranges_free(&img->diff_pages);
	memset(img, 0, sizeof(*img));
	img->mem.fd = img->diff_fd = -1;
}

/* A diff snapshot's own pages over its base (clone_pages.put). */
static int read_diff_pages(struct vm *vm, void *arg)
{
	const struct snapshot_image *img = arg;

	for (unsigned i = 0; img->is_diff && i < img->diff_pages.n; i++) {
		uint64_t off = img->diff_pages.r[i].off, len = img->diff_pages.r[i].len;

		if (pread(img->diff_fd, vm->mem.host + off, len, (off_t)off) != (ssize_t)len)
			return -EIO;
	}
	return 0;
}

/* The files a device's state needs beside it (a disk's overlays), read before it is loaded. */
static int import_devices(struct vm *vm, const struct snapshot_image *img)
{
	int ret = 0;

	for (unsigned i = 0; !ret && device_table[i]; i++)
		if (img->state.devs[i].on && device_table[i]->import)
			ret = device_table[i]->import(vm->devs[i], img->dir);
	return ret;
}

static int load_into(struct vmm *vmm, struct vm *vm, const struct snapshot_image *img,
		     unsigned index, const char *console)
{
	struct clone_pages pages = { read_diff_pages, (void *)img };
	struct clone_identity id = { .generation = img->state.ctl.generation + 1,
				     .child_index = index };
	int ret;

	guest_mem_adopt_base(&vm->mem); /* a snapshot's mem file never changes */
	/* The CPUID the snapshot's guest saw, shaped per vCPU like any of ours. */
	ret = vm_set_cpuid_table(vm, img->cpuid);
	if (!ret)
		ret = import_devices(vm, img);
	if (ret < 0)
		return ret;
	/* A clone of the snapshot with no parent here: its own. */
	id.id = id.parent_id = vmm_alloc_ids(vmm, 1);
	ret = vm_become_clone(vm, &img->state, false, &pages, &id, console);
	if (!ret)
		ret = vm_start_paused(vm);
	if (!ret)
		ret = vmm_add(vmm, vm);
	return ret;
}

int vm_restore(struct vmm *vmm, const struct snapshot_image *img, unsigned index,
	       const char *console, struct vm **out)
{
	struct vm *vm;
	int ret = vm_create_shell(&vm, &vmm->kvm, img->mem.size, img->state.ncpus, NULL, &img->mem);

	if (ret < 0)
		return ret;
	ret = load_into(vmm, vm, img, index, console);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}
