/*
 * The guest-physical layout every vm-fork VM has. The e820 map, the boot
 * tables, the MP table and the devices all derive from these constants.
 */
#ifndef CORE_LAYOUT_H
#define CORE_LAYOUT_H

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

#define PAGE_SIZE 4096ULL

/* Low memory used by the VMM's own boot structures (all below 640 KiB). */
#define LAYOUT_GDT          0x500ULL     /* boot GDT, 8 entries */
#define LAYOUT_ZERO_PAGE    0x7000ULL    /* struct boot_params */
#define LAYOUT_BOOT_STACK   0x8ff0ULL    /* initial RSP for our guests */
#define LAYOUT_PML4         0x9000ULL    /* identity page tables: PML4, PDPT, 4 PDs */
#define LAYOUT_PDPT         0xa000ULL
#define LAYOUT_PD           0xb000ULL    /* 4 pages: 0xb000-0xefff */
#define LAYOUT_PT_END       0xf000ULL
#define LAYOUT_CMDLINE      0x20000ULL
#define LAYOUT_CMDLINE_MAX  0x10000ULL   /* including the NUL */
#define LAYOUT_EBDA         0x9fc00ULL   /* from here to 1 MiB is reserved */
#define LAYOUT_MPTABLE      0x9fc00ULL   /* MP floating pointer + table, in the EBDA */
#define LAYOUT_ACPI         0xe0000ULL   /* ACPI tables (vmm/acpi.c), where Linux scans for the RSDP */
#define LAYOUT_ACPI_END     0xf0000ULL
#define LAYOUT_VMGENID      0xf0000ULL   /* the VMGenID GUID (16 bytes), alone in its page */
#define LAYOUT_HIMEM        0x100000ULL  /* first byte of extended memory */
#define LAYOUT_KERNEL_MIN   LAYOUT_HIMEM /* nothing may be loaded below this */

/* RAM below 4 GiB stops here; the rest of RAM is placed at 4 GiB. */
#define LAYOUT_MMIO_HOLE    0xc0000000ULL
#define LAYOUT_MMIO_HOLE_END 0x100000000ULL
#define LAYOUT_HIGH_RAM     0x100000000ULL

/*
 * vm-fork fuzz's regions in the 32-bit hole, memory of their own (not RAM):
 * the coverage map (up to 16 MiB) and the input (up to 16 MiB).
 */
#define LAYOUT_FUZZ_MAP     0xc0000000ULL
#define LAYOUT_FUZZ_MAP_MAX (16 * MiB)
#define LAYOUT_FUZZ_INPUT   0xc1000000ULL
#define LAYOUT_FUZZ_INPUT_MAX (16 * MiB)

/* Devices in the 32-bit hole. */
#define LAYOUT_CTL_MMIO     0xd0000000ULL /* control device, one page */
#define LAYOUT_GED_MMIO     0xd0001000ULL /* ACPI Generic Event Device's event register */
#define LAYOUT_GED_SIZE     0x1000ULL
/* virtio-mmio devices: one 4 KiB slot each, slot i interrupting on GSI_VIRTIO_BASE + i. */
#define LAYOUT_VIRTIO_MMIO  0xd0010000ULL
#define VIRTIO_MMIO_SLOT_SIZE 0x1000ULL
#define VIRTIO_MMIO_SLOTS   6
#define LAYOUT_IOAPIC       0xfec00000ULL
#define LAYOUT_LAPIC        0xfee00000ULL

/* KVM's x86 helpers need three pages it owns; just below 4 GiB, as QEMU puts them. */
#define LAYOUT_KVM_IDENT_MAP 0xfeffc000ULL
#define LAYOUT_KVM_TSS       0xfeffd000ULL

/* Legacy ports and IRQs. */
#define COM1_PORT 0x3f8
#define COM1_IRQ  4
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64
/* ACPI hardware-reduced registers (FADT): sleep control, sleep status, reset; one byte each. */
#define ACPI_PM_PORT        0x600
#define ACPI_SLEEP_CTL_PORT (ACPI_PM_PORT + 0)
#define ACPI_SLEEP_STS_PORT (ACPI_PM_PORT + 1)
#define ACPI_RESET_PORT     (ACPI_PM_PORT + 2)
#define ACPI_RESET_VALUE    0x42
/*
 * GSIs above the ISA range, edge-triggered and active-high, so that no
 * legacy device or the MP table's ISA entries ever share them.
 */
#define GSI_VIRTIO_BASE     16            /* ... to 16 + VIRTIO_MMIO_SLOTS - 1 */
#define GSI_GED             23
/* The GED's event bits (its _EVT method notifies by them). */
#define ACPI_EVENT_VMGENID  (1u << 0)

#define VM_MIN_MEM (16 * MiB)
#define VM_MAX_MEM (1024 * GiB)
#define VM_MAX_CPUS 64

#endif
