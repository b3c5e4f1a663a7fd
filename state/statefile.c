#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/layout.h"
#include "core/log.h"
#include "state/statefile.h"

#define CHECKSUM_PROP "vm-fork,checksum"

/* A property that holds a whole struct, by name and offset in its parent struct. */
struct blob_prop {
	const char *name;
	size_t offset, size;
};

#define VCPU_PROP(n, f) { n, offsetof(struct vcpu_state, f), sizeof(((struct vcpu_state *)0)->f) }
static const struct blob_prop vcpu_props[] = {
	VCPU_PROP("mp-state", mp_state), VCPU_PROP("regs", regs), VCPU_PROP("sregs", sregs),
	VCPU_PROP("xcrs", xcrs), VCPU_PROP("debugregs", debugregs), VCPU_PROP("lapic", lapic),
	VCPU_PROP("events", events),
};

#define VM_PROP(n, f) { n, offsetof(struct vm_state, f), sizeof(((struct vm_state *)0)->f) }
static const struct blob_prop vm_props[] = {
	VM_PROP("pit", pit), VM_PROP("clock", clock), VM_PROP("pic-master", irqchip[0]),
	VM_PROP("pic-slave", irqchip[1]), VM_PROP("ioapic", irqchip[2]),
	VM_PROP("captured-ns", captured_ns),
};

#define NPROPS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Building ---- */

static int set_u64(void *fdt, int node, const char *name, uint64_t v)
{
	return fdt_setprop_u64(fdt, node, name, v);
}

static int add_blobs(void *fdt, int node, const void *base, const struct blob_prop *p, size_t n)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < n; i++)
		ret = fdt_setprop(fdt, node, p[i].name, (const uint8_t *)base + p[i].offset,
				  (int)p[i].size);
	return ret;
}

static int add_meta(void *fdt, const struct vm_snapshot *snap, const struct snap_meta *m)
{
	int node = fdt_add_subnode(fdt, 0, "meta");

	if (node < 0)
		return node;
	return set_u64(fdt, node, "mem-size", snap->mem_size) ?:
	       fdt_setprop_u32(fdt, node, "ncpus", snap->ncpus) ?:
	       set_u64(fdt, node, "created", m->created_unix) ?:
	       set_u64(fdt, node, "id", m->id) ?: set_u64(fdt, node, "base-id", m->base_id) ?:
	       fdt_setprop_u32(fdt, node, "diff", m->is_diff) ?:
	       fdt_setprop_string(fdt, node, "source", m->source);
}

static int add_cpus(void *fdt, const struct vm_snapshot *snap)
{
	int cpus = fdt_add_subnode(fdt, 0, "cpus"), ret = cpus < 0 ? cpus : 0;

	/* fdt_add_subnode() puts a node first: add them last to first to read 0..n-1. */
	for (unsigned i = snap->ncpus; !ret && i-- > 0;) {
		const struct vcpu_state *v = &snap->vcpus[i];
		char name[16];
		int node;

		snprintf(name, sizeof(name), "cpu@%u", i);
		node = fdt_add_subnode(fdt, cpus, name);
		ret = node < 0 ? node : add_blobs(fdt, node, v, vcpu_props, NPROPS(vcpu_props));
		if (!ret)
			ret = fdt_setprop(fdt, node, "msrs", v->msrs,
					  (int)(v->nmsrs * sizeof(v->msrs[0]))) ?:
			      fdt_setprop(fdt, node, "xsave", v->xsave, (int)v->xsave_size) ?:
			      fdt_setprop_u32(fdt, node, "tsc-khz", v->tsc_khz);
	}
	return ret;
}

static int add_devices(void *fdt, const struct vm_snapshot *snap)
{
	int devs = fdt_add_subnode(fdt, 0, "devices"), node, ret;

	if (devs < 0)
		return devs;
	node = fdt_add_subnode(fdt, devs, "ctl");
	ret = node < 0 ? node :
	      set_u64(fdt, node, "clone-id", snap->ctl.clone_id) ?:
	      set_u64(fdt, node, "generation", snap->ctl.generation) ?:
	      set_u64(fdt, node, "child-index", snap->ctl.child_index) ?:
	      set_u64(fdt, node, "fork-result", snap->ctl.fork_result) ?:
	      set_u64(fdt, node, "fork-first-id", snap->ctl.fork_first_id);
	/* The table's devices, each a node holding its state, and "arg" when turned on. */
	for (unsigned i = 0; !ret && device_table[i]; i++) {
		ret = (node = fdt_add_subnode(fdt, devs, device_table[i]->name)) < 0 ? node :
		      fdt_setprop(fdt, node, "state", snap->devs[i].bytes,
				  (int)device_table[i]->state_size);
		if (!ret && snap->devs[i].on)
			ret = fdt_setprop_string(fdt, node, "arg", snap->devs[i].arg);
	}
	return ret;
}

/* An optional device's "arg": a string that fits, and only on a device that has an option. */
static int read_device_arg(const void *fdt, int node, const struct device_type *t,
			   struct device_state *st)
{
	int len;
	const char *arg = fdt_getprop(fdt, node, "arg", &len);

	st->on = arg != NULL;
	if (!arg)
		return 0;
	if (!t->option || len < 1 || len > DEVICE_ARG_MAX || arg[len - 1] || strlen(arg) != (size_t)len - 1)
		return -EBADMSG;
	memcpy(st->arg, arg, (size_t)len);
	return 0;
}

/* Node offsets move whenever something is added before them: each is used at once. */
static int add_node_blobs(void *fdt, const char *name, const void *base,
			  const struct blob_prop *p, size_t n)
{
	int node = fdt_add_subnode(fdt, 0, name);

	return node < 0 ? node : add_blobs(fdt, node, base, p, n);
}

static int add_cpuid(void *fdt, const struct kvm_cpuid2 *cpuid)
{
	int node = fdt_add_subnode(fdt, 0, "cpuid");

	return node < 0 ? node : fdt_setprop(fdt, node, "entries", cpuid->entries,
					      (int)(cpuid->nent * sizeof(cpuid->entries[0])));
}

static int add_all(void *fdt, const struct vm_snapshot *snap, const struct snap_meta *m,
		   const struct kvm_cpuid2 *cpuid)
{
	return fdt_setprop_u32(fdt, 0, "vm-fork,format", STATEFILE_FORMAT) ?:
	       fdt_setprop_u32(fdt, 0, CHECKSUM_PROP, 0) ?: add_meta(fdt, snap, m) ?:
	       add_cpuid(fdt, cpuid) ?:
	       add_node_blobs(fdt, "vm", &snap->vm, vm_props, NPROPS(vm_props)) ?:
	       add_cpus(fdt, snap) ?: add_devices(fdt, snap);
}

static void seal_checksum(void *fdt)
{
	uint32_t crc;

	fdt_pack(fdt);
	crc = (uint32_t)crc32(0, fdt, fdt_totalsize(fdt));
	fdt_setprop_inplace_u32(fdt, 0, CHECKSUM_PROP, crc);
}

int snapfile_build(const struct vm_snapshot *snap, const struct snap_meta *meta,
		   const struct kvm_cpuid2 *cpuid, void **blob, size_t *len)
{
	size_t size = 64 * KiB + snap->ncpus * (sizeof(struct vcpu_state) + 4 * KiB) +
		      cpuid->nent * sizeof(cpuid->entries[0]);
	void *fdt = malloc(size);
	int ret;

	if (!fdt)
		return -ENOMEM;
	ret = fdt_create_empty_tree(fdt, (int)size) ?: add_all(fdt, snap, meta, cpuid);
	if (ret) {
		pr_err("state file: cannot build it: %s", fdt_strerror(ret));
		free(fdt);
		return -ENOMEM;
	}
	seal_checksum(fdt);
	*blob = fdt;
	*len = fdt_totalsize(fdt);
	return 0;
}

/* ---- Reading it back: nothing in it is trusted ---- */

#define STATEFILE_MAX (64 * MiB)

static int bad(const char *what)
{
	pr_err("state file: %s", what);
	return -EBADMSG;
}

/* The property's bytes, which must be exactly size long (size 0: any length, in *len). */
static const void *prop(const void *fdt, int node, const char *name, size_t size, size_t *len)
{
	int n;
	const void *p = fdt_getprop(fdt, node, name, &n);

	if (!p || n < 0 || (size && (size_t)n != size))
		return NULL;
	if (len)
		*len = (size_t)n;
	return p;
}

/* Property values are only 4-byte aligned in a tree: read cells with memcpy. */
static int get_u32(const void *fdt, int node, const char *name, uint32_t *v)
{
	const void *p = prop(fdt, node, name, sizeof(fdt32_t), NULL);
	fdt32_t cell;

	if (!p)
		return -EBADMSG;
	memcpy(&cell, p, sizeof(cell));
	*v = fdt32_to_cpu(cell);
	return 0;
}

static int get_u64(const void *fdt, int node, const char *name, uint64_t *v)
{
	const void *p = prop(fdt, node, name, sizeof(fdt64_t), NULL);
	fdt64_t cell;

	if (!p)
		return -EBADMSG;
	memcpy(&cell, p, sizeof(cell));
	*v = fdt64_to_cpu(cell);
	return 0;
}

static int get_blob(const void *fdt, int node, const char *name, void *dst, size_t size)
{
	const void *p = prop(fdt, node, name, size, NULL);

	if (!p)
		return -EBADMSG;
	memcpy(dst, p, size);
	return 0;
}

static int check_checksum(const void *blob, size_t len)
{
	uint8_t *copy = malloc(len);
	const void *stored = prop(blob, 0, "vm-fork,checksum", sizeof(fdt32_t), NULL);
	fdt32_t want;
	uint32_t crc;
	int ret;

	if (!copy || !stored) {
		free(copy);
		return copy ? bad("no checksum") : -ENOMEM;
	}
	memcpy(&want, stored, sizeof(want));
	memcpy(copy, blob, len);
	ret = fdt_setprop_inplace_u32(copy, 0, "vm-fork,checksum", 0);
	crc = (uint32_t)crc32(0, copy, (uInt)len);
	free(copy);
	if (ret || crc != fdt32_to_cpu(want))
		return bad("checksum mismatch: the file is damaged");
	return 0;
}

static int check_structure(const void *blob, size_t len)
{
	uint32_t format;

	if (len < sizeof(struct fdt_header) || len > STATEFILE_MAX)
		return bad("not a state file (size)");
	if (fdt_check_full(blob, len) || fdt_totalsize(blob) != len)
		return bad("not a well-formed device tree");
	if (get_u32(blob, 0, "vm-fork,format", &format) < 0)
		return bad("no vm-fork,format: not a vm-fork state file");
	if (format != STATEFILE_FORMAT) {
		pr_err("state file: format %u, this vm-fork reads %u", format, STATEFILE_FORMAT);
		return -EBADMSG;
	}
	return check_checksum(blob, len);
}

static int read_meta(const void *fdt, struct snap_meta *m)
{
	int node = fdt_subnode_offset(fdt, 0, "meta");
	uint32_t diff;
	size_t n;
	const char *src;

	memset(m, 0, sizeof(*m));
	if (node < 0 || get_u64(fdt, node, "mem-size", &m->mem_size) ||
	    get_u32(fdt, node, "ncpus", &m->ncpus) || get_u64(fdt, node, "created", &m->created_unix) ||
	    get_u64(fdt, node, "id", &m->id) || get_u64(fdt, node, "base-id", &m->base_id) ||
	    get_u32(fdt, node, "diff", &diff) || !(src = prop(fdt, node, "source", 0, &n)))
		return bad("meta node incomplete");
	if (m->mem_size < VM_MIN_MEM || m->mem_size > VM_MAX_MEM || m->mem_size % (2 * MiB))
		return bad("impossible memory size");
	if (m->ncpus < 1 || m->ncpus > VM_MAX_CPUS)
		return bad("impossible vCPU count");
	if (diff > 1 || !n || n > sizeof(m->source) || src[n - 1])
		return bad("meta node malformed");
	memcpy(m->source, src, n);
	m->is_diff = diff;
	m->mem_file_size = m->mem_size;
	return 0;
}

static int read_cpuid(const void *fdt, struct kvm_cpuid2 **out)
{
	int node = fdt_subnode_offset(fdt, 0, "cpuid");
	size_t n, count;
	const void *p = node < 0 ? NULL : prop(fdt, node, "entries", 0, &n);
	struct kvm_cpuid2 *c;

	count = p ? n / sizeof(c->entries[0]) : 0;
	if (!p || n % sizeof(c->entries[0]) || !count || count > STATEFILE_MAX_CPUID)
		return bad("cpuid node malformed");
	c = calloc(1, sizeof(*c) + n);
	if (!c)
		return -ENOMEM;
	c->nent = (uint32_t)count;
	memcpy(c->entries, p, n);
	*out = c;
	return 0;
}

static int read_blobs(const void *fdt, int node, void *base, const struct blob_prop *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (get_blob(fdt, node, p[i].name, (uint8_t *)base + p[i].offset, p[i].size) < 0) {
			pr_err("state file: property %s missing or of the wrong size", p[i].name);
			return -EBADMSG;
		}
	return 0;
}

static int read_vm(const void *fdt, struct vm_state *vm)
{
	int node = fdt_subnode_offset(fdt, 0, "vm");

	if (node < 0 || read_blobs(fdt, node, vm, vm_props, NPROPS(vm_props)))
		return bad("vm node incomplete");
	for (unsigned i = 0; i < STATE_NR_IRQCHIPS; i++)
		if (vm->irqchip[i].chip_id != i)
			return bad("irqchip ids out of order");
	return 0;
}

static int read_vcpu(const void *fdt, int node, struct vcpu_state *v)
{
	size_t n = 0;
	const void *msrs = prop(fdt, node, "msrs", 0, &n);
	const void *xsave;

	if (read_blobs(fdt, node, v, vcpu_props, NPROPS(vcpu_props)) ||
	    get_u32(fdt, node, "tsc-khz", &v->tsc_khz))
		return bad("cpu node incomplete");
	if (!msrs || n % sizeof(v->msrs[0]) || n / sizeof(v->msrs[0]) > STATE_MAX_MSRS)
		return bad("msrs malformed");
	v->nmsrs = (uint32_t)(n / sizeof(v->msrs[0]));
	memcpy(v->msrs, msrs, n);
	xsave = prop(fdt, node, "xsave", 0, &n);
	if (!xsave || n < STATE_XSAVE_MIN || n > STATE_XSAVE_MAX || n % 4)
		return bad("xsave malformed");
	v->xsave_size = (uint32_t)n;
	memcpy(v->xsave, xsave, n);
	return 0;
}

static int read_cpus(const void *fdt, struct vm_snapshot *snap)
{
	int cpus = fdt_subnode_offset(fdt, 0, "cpus"), node, count = 0;

	if (cpus < 0)
		return bad("no cpus node");
	fdt_for_each_subnode(node, fdt, cpus) {
		char name[16];

		snprintf(name, sizeof(name), "cpu@%d", count);
		if ((unsigned)count >= snap->ncpus || strcmp(fdt_get_name(fdt, node, NULL), name))
			return bad("cpu nodes do not match ncpus");
		if (read_vcpu(fdt, node, &snap->vcpus[count]) < 0)
			return -EBADMSG;
		count++;
	}
	return (unsigned)count == snap->ncpus ? 0 : bad("fewer cpu nodes than ncpus");
}

static int read_devices(const void *fdt, struct vm_snapshot *snap)
{
	int devs = fdt_subnode_offset(fdt, 0, "devices");
	int ctl = devs < 0 ? devs : fdt_subnode_offset(fdt, devs, "ctl");

	for (unsigned i = 0; devs >= 0 && device_table[i]; i++) {
		const struct device_type *t = device_table[i];
		int node = fdt_subnode_offset(fdt, devs, t->name);

		if (node < 0 || get_blob(fdt, node, "state", snap->devs[i].bytes, t->state_size))
			return bad("devices node incomplete");
		if (read_device_arg(fdt, node, t, &snap->devs[i]) < 0)
			return bad("a device's arg is not a string of its option");
		if (t->check(snap->devs[i].bytes) < 0)
			return bad("a device's state is out of range");
	}
	if (ctl < 0 ||
	    get_u64(fdt, ctl, "clone-id", &snap->ctl.clone_id) ||
	    get_u64(fdt, ctl, "generation", &snap->ctl.generation) ||
	    get_u64(fdt, ctl, "child-index", &snap->ctl.child_index) ||
	    get_u64(fdt, ctl, "fork-result", &snap->ctl.fork_result) ||
	    get_u64(fdt, ctl, "fork-first-id", &snap->ctl.fork_first_id))
		return bad("devices node incomplete");
	return 0;
}

int snapfile_parse(const void *blob, size_t len, struct vm_snapshot *snap,
		   struct snap_meta *meta, struct kvm_cpuid2 **cpuid)
{
	int ret;

	memset(snap, 0, sizeof(*snap));
	*cpuid = NULL;
	ret = check_structure(blob, len) ?: read_meta(blob, meta);
	if (ret)
		return ret;
	snap->ncpus = meta->ncpus;
	snap->mem_size = meta->mem_size;
	snap->vcpus = aligned_alloc(64, snap->ncpus * sizeof(*snap->vcpus));
	if (!snap->vcpus)
		return -ENOMEM;
	memset(snap->vcpus, 0, snap->ncpus * sizeof(*snap->vcpus));
	ret = read_cpuid(blob, cpuid) ?: read_vm(blob, &snap->vm) ?: read_cpus(blob, snap) ?:
	      read_devices(blob, snap);
	if (ret) {
		vm_snapshot_free(snap);
		free(*cpuid);
		*cpuid = NULL;
	}
	return ret;
}
