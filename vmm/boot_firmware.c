/*
 * Booting firmware (vm-fork run --firmware): the image is mapped read-only
 * just below 4 GiB, and its last 128 KiB are copied into RAM at 0xE0000, as
 * a PC's chipset shows them. SeaBIOS's build without PCI cannot unlock a
 * shadow, so that copy must be writable RAM (docs/seabios.md). The boot vCPU
 * stays in the architectural reset state KVM gave it: real mode at
 * F000:FFF0, the image's reset vector. None of vm-fork's own boot tables are
 * written: the firmware makes its own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "devices/cmos.h"
#include "devices/fw_cfg.h"
#include "devices/vmgenid.h"
#include "vmm/boot_firmware.h"
#include "vmm/boot.h"
#include "vmm/vm.h"

#define FIRMWARE_MIN    (64 * KiB)
#define FIRMWARE_MAX    (16 * MiB)
#define FIRMWARE_SHADOW (128 * KiB)   /* 0xE0000 - 0xFFFFF */

/* The image in memory of its own, read-only to the guest, at 4 GiB - len. */
static int map_image(struct vm *vm, const uint8_t *image, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ret;

	if (p == MAP_FAILED)
		return -errno;
	memcpy(p, image, len);
	ret = guest_mem_map_host(vm->fd, MEM_SLOT_FIRMWARE, 4 * GiB - len, p, len, true);
	if (ret < 0) {
		munmap(p, len);
		return ret;
	}
	vm->firmware = p;
	vm->firmware_size = len;
	return 0;
}

/*
 * The DSDT without VMGenID: its fixed page (0xF0000) is the firmware's here,
 * and the firmware would have to place the ID (QEMU's WRITE_POINTER).
 */
static int add_acpi(struct vm *vm, void *fw_cfg)
{
	void *devs[DEVICE_MAX];
	int vmgenid = device_index(&vmgenid_device);

	memcpy(devs, vm->devs, sizeof(devs));
	if (vmgenid >= 0)
		devs[vmgenid] = NULL;
	return firmware_add_acpi(fw_cfg, vm->ncpus, devs);
}

/*
 * What SeaBIOS reads from fw_cfg: the CPU count, the memory map, a
 * boot-fail-wait of 0, so that "No bootable device." reboots at once (through
 * port 0xcf9: the VM stops) instead of waiting for a disk for ever, COM1 as
 * the screen (its serial console carries INT 10h there), and the ACPI tables,
 * whose DSDT names the virtio-mmio disks it boots from.
 */
static int fill_fw_cfg(struct vm *vm)
{
	int i = device_index(&fw_cfg_device);
	void *f = i >= 0 && vm->dev_on[i] ? vm->devs[i] : NULL;
	struct boot_e820_entry e820[BOOT_E820_MAX];
	uint16_t cpus = (uint16_t)vm->ncpus;
	uint32_t no_wait = 0;
	uint16_t com1 = COM1_PORT;
	int n = boot_build_e820(&vm->mem, e820, BOOT_E820_MAX), ret;

	if (!f)
		return -ENODEV;
	if (n < 0)
		return n;
	ret = fw_cfg_set(f, FW_CFG_NB_CPUS, &cpus, sizeof(cpus));
	if (!ret)
		ret = fw_cfg_set(f, FW_CFG_MAX_CPUS, &cpus, sizeof(cpus));
	if (!ret)
		ret = fw_cfg_add_file(f, "etc/e820", e820, (size_t)n * sizeof(e820[0]));
	if (!ret)
		ret = fw_cfg_add_file(f, "etc/boot-fail-wait", &no_wait, sizeof(no_wait));
	if (!ret)
		ret = fw_cfg_add_file(f, "etc/sercon-port", &com1, sizeof(com1));
	if (!ret)
		ret = add_acpi(vm, f);
	return ret;
}

/* The memory size and CPU count in CMOS, where PC firmware without fw_cfg looks. */
static void fill_cmos(struct vm *vm)
{
	int i = device_index(&cmos_device);
	uint64_t below = vm->mem.size < LAYOUT_MMIO_HOLE ? vm->mem.size : LAYOUT_MMIO_HOLE;

	if (i >= 0 && vm->dev_on[i])
		cmos_set_machine(vm->devs[i], below, vm->mem.size - below, vm->ncpus);
}

int vm_boot_firmware(struct vm *vm, const struct vm_config *cfg)
{
	size_t len, shadow;
	uint8_t *image;
	int ret = boot_read_file(cfg->firmware, FIRMWARE_MAX, &image, &len);

	if (ret < 0)
		return ret;
	if (len < FIRMWARE_MIN || len % (64 * KiB)) {
		pr_err("%s: a firmware image is 64 KiB to 16 MiB, in 64 KiB steps (%zu bytes)",
		       cfg->firmware, len);
		free(image);
		return -EINVAL;
	}
	ret = map_image(vm, image, len);
	if (!ret)
		ret = fill_fw_cfg(vm);
	if (!ret && cfg->kernel)
		ret = firmware_add_linux(vm->devs[device_index(&fw_cfg_device)], &vm->mem, cfg->kernel,
					 cfg->initrd, cfg->cmdline);
	if (!ret)
		fill_cmos(vm);
	/* The devices first: what they place in low RAM, the firmware's copy replaces. */
	if (!ret)
		ret = vm_devices_attach(vm);
	shadow = len < FIRMWARE_SHADOW ? len : FIRMWARE_SHADOW;
	if (!ret)
		ret = guest_write(&vm->mem, 1 * MiB - shadow, image + len - shadow, shadow);
	free(image);
	return ret;
}

/*
 * A clone of a firmware VM, or one restored from its snapshot, has fw_cfg on
 * but empty: its state is the selector and offset alone. The same contents,
 * rebuilt from the same machine, let a firmware forked mid-way read on.
 */
int vm_firmware_forked(struct vm *vm)
{
	int i = device_index(&fw_cfg_device);

	if (i < 0 || !vm->dev_on[i] || fw_cfg_files(vm->devs[i]))
		return 0;
	return fill_fw_cfg(vm);
}

void vm_drop_firmware(struct vm *vm)
{
	if (vm->firmware)
		munmap(vm->firmware, vm->firmware_size);
	vm->firmware = NULL;
}
