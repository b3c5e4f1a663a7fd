/*
 * What booting firmware gives it beyond the image (vmm/boot_firmware.c):
 * the ACPI tables through fw_cfg's table loader (vmm/boot_firmware_acpi.c).
 */
#ifndef VMM_BOOT_FIRMWARE_H
#define VMM_BOOT_FIRMWARE_H

/*
 * Add etc/acpi/tables, etc/acpi/rsdp and etc/table-loader to fw_cfg (a
 * fw_cfg device): the tables for ncpus vCPUs and the devices devs (one per
 * device_table entry, NULL for none). 0 or a negative errno, logged.
 */
int firmware_add_acpi(void *fw_cfg, unsigned ncpus, void *const *devs);

#endif
