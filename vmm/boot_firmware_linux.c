/*
 * --kernel with --firmware (vmm/boot_firmware.h): the kernel, its initrd and
 * command line go to the firmware through fw_cfg the way QEMU's -kernel gives
 * them, with QEMU's option ROM linuxboot_dma.bin (Debian's qemu-system-data).
 * SeaBIOS runs the ROM as its first boot entry (the bootorder file says so);
 * the ROM reads the parts by DMA, places them, and jumps to the kernel's
 * real-mode setup. The setup header is patched here as a boot loader would
 * (Documentation/arch/x86/boot.rst): loader type, heap, command line, initrd.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The UAPI names its e820 entry like vmm/boot.h; keep its name out of the way. */
#define boot_e820_entry linux_boot_e820_entry
#include <asm/bootparam.h>
#undef boot_e820_entry

#include "core/layout.h"
#include "core/log.h"
#include "devices/fw_cfg.h"
#include "vmm/boot.h"
#include "vmm/boot_firmware.h"

#define LINUXBOOT_ROM     "/usr/share/qemu/linuxboot_dma.bin"
#define LINUXBOOT_ROM_MAX (64 * 1024)

/* Where the ROM puts each part, as QEMU's x86_load_linux() has them. */
#define REAL_ADDR    0x10000u
#define CMDLINE_ADDR 0x20000u
#define PROT_ADDR    0x100000u
/* What the firmware keeps at the top of low RAM (its high tables): the initrd stays below. */
#define FIRMWARE_TOP (1 * MiB)

/* The setup header's place in the bzImage, and how much of it this loader reads and writes. */
#define HDR_OFFSET     0x1f1
#define HDR_END        (HDR_OFFSET + offsetof(struct setup_header, cmdline_size) + 4)
#define LOADER_UNKNOWN 0xff

/* fw_cfg's keys for a kernel (QEMU's docs/specs/fw_cfg.rst). */
enum {
	KEY_KERNEL_ADDR = 0x07, KEY_KERNEL_SIZE = 0x08, KEY_INITRD_ADDR = 0x0a,
	KEY_INITRD_SIZE = 0x0b, KEY_KERNEL_DATA = 0x11, KEY_INITRD_DATA = 0x12,
	KEY_CMDLINE_ADDR = 0x13, KEY_CMDLINE_SIZE = 0x14, KEY_CMDLINE_DATA = 0x15,
	KEY_SETUP_ADDR = 0x16, KEY_SETUP_SIZE = 0x17, KEY_SETUP_DATA = 0x18,
};

static int set32(void *fw_cfg, uint16_t key, uint32_t v)
{
	return fw_cfg_set(fw_cfg, key, &v, sizeof(v));
}

/* A part: its address and size keys, and its bytes. */
static int set_part(void *fw_cfg, uint16_t addr_key, uint32_t addr, uint16_t size_key,
		    uint16_t data_key, const void *data, size_t len)
{
	int ret = set32(fw_cfg, addr_key, addr);

	if (!ret)
		ret = set32(fw_cfg, size_key, (uint32_t)len);
	if (!ret)
		ret = fw_cfg_set(fw_cfg, data_key, data, len);
	return ret;
}

/* The initrd at the top of low RAM, page-aligned, below what the kernel and the firmware allow. */
static int add_initrd(void *fw_cfg, const struct guest_mem *mem, const char *path,
		      struct setup_header *h)
{
	uint64_t top = guest_mem_low_end(mem) - FIRMWARE_TOP;
	uint64_t max = h->version >= 0x203 ? h->initrd_addr_max : 0x37ffffff;
	uint8_t *data;
	size_t len;
	uint32_t addr;
	int ret = boot_read_file(path, BOOT_INITRD_MAX, &data, &len);

	if (ret < 0)
		return ret;
	if (max >= top)
		max = top - 1;
	if (len > max - PROT_ADDR) {
		pr_err("%s: %zu bytes do not fit below %#llx", path, len, (unsigned long long)max);
		free(data);
		return -EFBIG;
	}
	addr = (uint32_t)((max + 1 - len) & ~0xfffULL);
	h->ramdisk_image = addr;
	h->ramdisk_size = (uint32_t)len;
	ret = set_part(fw_cfg, KEY_INITRD_ADDR, addr, KEY_INITRD_SIZE, KEY_INITRD_DATA, data, len);
	free(data);
	return ret;
}

static int add_rom(void *fw_cfg)
{
	static const char order[] = "/rom@genroms/linuxboot_dma.bin\n";
	uint8_t *rom;
	size_t len;
	int ret = boot_read_file(LINUXBOOT_ROM, LINUXBOOT_ROM_MAX, &rom, &len);

	if (ret < 0) {
		pr_err("--kernel with --firmware needs QEMU's %s (Debian: qemu-system-data)",
		       LINUXBOOT_ROM);
		return ret;
	}
	ret = fw_cfg_add_file(fw_cfg, "genroms/linuxboot_dma.bin", rom, len);
	if (!ret)
		ret = fw_cfg_add_file(fw_cfg, "bootorder", order, sizeof(order) - 1);
	free(rom);
	return ret;
}

/* The patched setup, the protected-mode kernel and the command line; then the initrd. */
static int add_parts(void *fw_cfg, const struct guest_mem *mem, const uint8_t *k, size_t len,
		     const char *initrd, const char *cmdline)
{
	const struct setup_header *kh = (const void *)(k + HDR_OFFSET);
	size_t setup_size = ((size_t)(kh->setup_sects ? kh->setup_sects : 4) + 1) * 512;
	size_t cmd_len = strlen(cmdline) + 1;
	struct setup_header *h;
	uint8_t *setup;
	int ret;

	if (setup_size >= len || setup_size < HDR_END)
		return -EINVAL;
	if (kh->version >= 0x206 && cmd_len > (size_t)kh->cmdline_size + 1) {
		pr_err("the command line is longer than the kernel takes (%u bytes)", kh->cmdline_size);
		return -E2BIG;
	}
	setup = malloc(setup_size);
	if (!setup)
		return -ENOMEM;
	memcpy(setup, k, setup_size);
	h = (void *)(setup + HDR_OFFSET);
	h->type_of_loader = LOADER_UNKNOWN;
	h->loadflags |= CAN_USE_HEAP;
	h->heap_end_ptr = CMDLINE_ADDR - REAL_ADDR - 0x200;
	h->cmd_line_ptr = CMDLINE_ADDR;
	ret = initrd ? add_initrd(fw_cfg, mem, initrd, h) : 0;
	if (!ret)
		ret = set_part(fw_cfg, KEY_SETUP_ADDR, REAL_ADDR, KEY_SETUP_SIZE, KEY_SETUP_DATA,
			       setup, setup_size);
	if (!ret)
		ret = set_part(fw_cfg, KEY_KERNEL_ADDR, PROT_ADDR, KEY_KERNEL_SIZE, KEY_KERNEL_DATA,
			       k + setup_size, len - setup_size);
	if (!ret)
		ret = set_part(fw_cfg, KEY_CMDLINE_ADDR, CMDLINE_ADDR, KEY_CMDLINE_SIZE,
			       KEY_CMDLINE_DATA, cmdline, cmd_len);
	free(setup);
	return ret;
}

int firmware_add_linux(void *fw_cfg, const struct guest_mem *mem, const char *kernel,
		       const char *initrd, const char *cmdline)
{
	const struct setup_header *h;
	uint8_t *k;
	size_t len;
	int ret = boot_read_file(kernel, BOOT_KERNEL_MAX, &k, &len);

	if (ret < 0)
		return ret;
	h = (const void *)(k + HDR_OFFSET);
	if (len < HDR_END || h->header != 0x53726448 /* "HdrS" */ || h->version < 0x202) {
		pr_err("%s: --kernel with --firmware takes a bzImage (boot protocol 2.02 or later)",
		       kernel);
		ret = -EINVAL;
	}
	if (!ret)
		ret = add_parts(fw_cfg, mem, k, len, initrd, cmdline ? cmdline : "");
	if (!ret)
		ret = add_rom(fw_cfg);
	free(k);
	return ret;
}
