/*
 * QEMU's firmware configuration device (fw_cfg), which SeaBIOS reads its
 * machine from (docs/seabios.md): a 16-bit selector at 0x510 and a data byte
 * at 0x511, read in order from the item's start; and the DMA interface, a
 * big-endian descriptor address written to 0x514 (high half) and 0x518 (low
 * half, which starts the transfer). Each transfer is done before the write
 * returns. A descriptor, or a buffer, outside guest RAM is refused (its
 * control says ERROR) and counted, as are reads past an item and writes.
 */
#ifndef DEVICES_FW_CFG_H
#define DEVICES_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "core/device.h"

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511
#define FW_CFG_PORT_DMA   0x514   /* 8 bytes: the descriptor's address, big-endian */

/* A DMA descriptor's control word (big-endian in guest memory). */
#define FW_CFG_DMA_ERROR  0x01
#define FW_CFG_DMA_READ   0x02
#define FW_CFG_DMA_SKIP   0x04
#define FW_CFG_DMA_SELECT 0x08    /* the selector in the top 16 bits */
#define FW_CFG_DMA_WRITE  0x10

#define FW_CFG_SIGNATURE  0x00
#define FW_CFG_ID         0x01
#define FW_CFG_NB_CPUS    0x05
#define FW_CFG_MAX_CPUS   0x0f
#define FW_CFG_FILE_DIR   0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_MAX_FILES  16
#define FW_CFG_NAME_MAX   56

extern const struct device_type fw_cfg_device;

/* Set key (< FW_CFG_FILE_FIRST) to len bytes of data (copied). 0 or -EINVAL/-ENOMEM. */
int fw_cfg_set(void *dev, uint16_t key, const void *data, size_t len);
/* Add a named file (copied) to the directory. 0, -ENOSPC, -ENAMETOOLONG or -ENOMEM. */
int fw_cfg_add_file(void *dev, const char *name, const void *data, size_t len);
/* Files in the directory. */
unsigned fw_cfg_files(void *dev);
/* Accesses the device refused: unknown selectors, reads past an item's end. */
uint64_t fw_cfg_refused(void *dev);

#endif
