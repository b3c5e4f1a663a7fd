/*
 * The ACPI tables for firmware (vmm/boot_firmware.h): the tables of
 * vmm/acpi.c, built as if at address 0, go to fw_cfg as etc/acpi/tables and
 * etc/acpi/rsdp, with QEMU's etc/table-loader script. The firmware allocates
 * both files (the RSDP in its F segment, where it and the OS look for it),
 * adds the address it chose to each field that points at a table, and
 * redoes the checksums those change. SeaBIOS then finds the virtio-mmio
 * disks in the DSDT.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "devices/fw_cfg.h"
#include "vmm/acpi.h"
#include "vmm/boot_firmware.h"

#define TABLES_FILE "etc/acpi/tables"
#define RSDP_FILE   "etc/acpi/rsdp"
#define LOADER_FILE "etc/table-loader"
#define LOADER_NAME 56

enum loader_command { LOADER_ALLOCATE = 1, LOADER_ADD_POINTER = 2, LOADER_ADD_CHECKSUM = 3 };
enum loader_zone { ZONE_HIGH = 1, ZONE_FSEG = 2 };

/* One 128-byte command of the script (QEMU's hw/acpi/bios-linker-loader.c ABI). */
struct loader_entry {
	uint32_t command;
	union {
		struct {
			char file[LOADER_NAME];
			uint32_t align;
			uint8_t zone;
		} __attribute__((packed)) alloc;
		struct {
			char dest[LOADER_NAME], src[LOADER_NAME];
			uint32_t offset;
			uint8_t size;
		} __attribute__((packed)) pointer;
		struct {
			char file[LOADER_NAME];
			uint32_t offset, start, length;
		} __attribute__((packed)) checksum;
		uint8_t pad[124];
	};
} __attribute__((packed));

_Static_assert(sizeof(struct loader_entry) == 128, "a table-loader command is 128 bytes");

/* ALLOCATE x2, ADD_POINTER per address field and the RSDP's, ADD_CHECKSUM per table and 2. */
#define LOADER_MAX (2 + 5 + 1 + 2 + 2)

struct script {
	struct loader_entry e[LOADER_MAX];
	unsigned n;
};

static struct loader_entry *next(struct script *s, enum loader_command command)
{
	struct loader_entry *e = &s->e[s->n++];

	e->command = command;
	return e;
}

static void allocate(struct script *s, const char *file, uint32_t align, enum loader_zone zone)
{
	struct loader_entry *e = next(s, LOADER_ALLOCATE);

	strncpy(e->alloc.file, file, LOADER_NAME - 1);
	e->alloc.align = align;
	e->alloc.zone = (uint8_t)zone;
}

/* The size-byte field at offset in dest gets src's address added. */
static void add_pointer(struct script *s, const char *dest, uint32_t offset, uint8_t size)
{
	struct loader_entry *e = next(s, LOADER_ADD_POINTER);

	strncpy(e->pointer.dest, dest, LOADER_NAME - 1);
	strncpy(e->pointer.src, TABLES_FILE, LOADER_NAME - 1);
	e->pointer.offset = offset;
	e->pointer.size = size;
}

/* The byte at offset becomes what makes [start, start + length) sum to 0. */
static void add_checksum(struct script *s, const char *file, uint32_t offset, uint32_t start,
			 uint32_t length)
{
	struct loader_entry *e = next(s, LOADER_ADD_CHECKSUM);

	strncpy(e->checksum.file, file, LOADER_NAME - 1);
	e->checksum.offset = offset;
	e->checksum.start = start;
	e->checksum.length = length;
}

static void write_script(struct script *s, const struct acpi_blob *b)
{
	allocate(s, TABLES_FILE, 64, ZONE_HIGH);
	allocate(s, RSDP_FILE, 16, ZONE_FSEG);
	for (unsigned i = 0; i < b->nptr64; i++)
		add_pointer(s, TABLES_FILE, b->ptr64[i], 8);
	add_pointer(s, TABLES_FILE, b->ptr32, 4);
	for (unsigned i = 0; i < sizeof(b->sums) / sizeof(b->sums[0]); i++)
		add_checksum(s, TABLES_FILE, b->sums[i].start + 9 /* header's checksum */,
			     b->sums[i].start, b->sums[i].len);
	add_pointer(s, RSDP_FILE, b->rsdp_xsdt, 8);
	/* The ACPI 1.0 part's checksum first: the whole RSDP's covers it. */
	add_checksum(s, RSDP_FILE, b->rsdp_sum, 0, b->rsdp_sum_len);
	add_checksum(s, RSDP_FILE, b->rsdp_ext_sum, 0, sizeof(b->rsdp));
}

int firmware_add_acpi(void *fw_cfg, unsigned ncpus, void *const *devs)
{
	struct script s = { .n = 0 };
	struct acpi_blob b;
	int ret = acpi_build_blob(ncpus, devs, &b);

	if (ret < 0)
		return ret;
	write_script(&s, &b);
	ret = fw_cfg_add_file(fw_cfg, TABLES_FILE, b.tables, b.len);
	if (!ret)
		ret = fw_cfg_add_file(fw_cfg, RSDP_FILE, b.rsdp, sizeof(b.rsdp));
	if (!ret)
		ret = fw_cfg_add_file(fw_cfg, LOADER_FILE, s.e, s.n * sizeof(s.e[0]));
	if (ret < 0)
		pr_err("firmware: cannot give it the ACPI tables: %s", strerror(-ret));
	acpi_blob_free(&b);
	return ret;
}
