#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/layout.h"
#include "fork/capture.h"
#include "fork/vmm.h"
#include "vmm/vm.h"

static int keep_pages(struct vm *vm, struct vm_capture *c)
{
	uint8_t *p;

	if (!c->pages.pages)
		return 0;
	p = c->data = malloc(c->pages.pages * PAGE_SIZE);
	if (!p)
		return -ENOMEM;
	for (unsigned i = 0; i < c->pages.n; i++) {
		memcpy(p, vm->mem.host + c->pages.r[i].off, c->pages.r[i].len);
		p += c->pages.r[i].len;
	}
	return 0;
}

/* Freeze the base at the first capture; later, find the pages written since. */
static int capture_memory(struct vm *vm, bool keep_data, struct vm_capture *c)
{
	uint64_t t = now_ns();
	int ret;

	if (!vm->mem.frozen) {
		ret = guest_mem_freeze(&vm->mem);
		c->freeze_ns = now_ns() - t;
		return ret;
	}
	/* Frozen while it ran (vm_fork), or moved into a shell whose old machine may still map it. */
	vm_wait_retired(vm);
	guest_mem_seal(&vm->mem);
	ret = guest_mem_private_ranges(&vm->mem, &c->pages);
	if (!ret && keep_data)
		ret = keep_pages(vm, c);
	return ret;
}

int vm_capture(struct vm *vm, bool keep_data, struct vm_capture *c)
{
	const struct msr_list *msrs = vm->vmm ? vmm_msr_list(vm->vmm) : NULL;
	int ret;

	memset(c, 0, sizeof(*c));
	if (!msrs) /* a VM outside a VMM, or the probe failed */
		return -EINVAL;
	ret = capture_memory(vm, keep_data, c);
	if (!ret)
		ret = vm_snapshot_capture(vm, msrs, &c->state);
	if (ret < 0)
		vm_capture_free(c);
	return ret;
}

void vm_capture_put_pages(const struct vm_capture *c, struct guest_mem *mem)
{
	const uint8_t *p = c->data;

	for (unsigned i = 0; p && i < c->pages.n; i++) {
		memcpy(mem->host + c->pages.r[i].off, p, c->pages.r[i].len);
		p += c->pages.r[i].len;
	}
}

void vm_capture_free(struct vm_capture *c)
{
	vm_snapshot_free(&c->state);
	mem_ranges_free(&c->pages);
	free(c->data);
	c->data = NULL;
}
