/*
 * What booting firmware gives it beyond the image (vmm/boot_firmware.c):
 * the ACPI tables through fw_cfg's table loader (vmm/boot_firmware_acpi.c),
 * and a kernel to boot (vmm/boot_firmware_linux.c).
 */
#ifndef VMM_BOOT_FIRMWARE_H
#define VMM_BOOT_FIRMWARE_H

/*
 * Add etc/acpi/tables, etc/acpi/rsdp and etc/table-loader to fw_cfg (a
 * fw_cfg device): the tables for ncpus vCPUs and the devices devs (one per
 * device_table entry, NULL for none). 0 or a negative errno, logged.
 */
int firmware_add_acpi(void *fw_cfg, unsigned ncpus, void *const *devs);

struct guest_mem;

/*
 * Add the bzImage at kernel, the initrd at initrd (or NULL) and cmdline (or
 * NULL) to fw_cfg, with QEMU's linuxboot_dma.bin option ROM first in the boot
 * order; mem is the VM's RAM (the initrd goes at its top). 0, or a negative
 * errno with the reason logged.
 */
int firmware_add_linux(void *fw_cfg, const struct guest_mem *mem, const char *kernel,
		       const char *initrd, const char *cmdline);

#endif
