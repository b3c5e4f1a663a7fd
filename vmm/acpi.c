/*
 * The ACPI tables (vmm/acpi.h), laid out as ACPI 6.3 has them: RSDP (5.2.5),
 * XSDT (5.2.8), FADT (5.2.9), MADT (5.2.12) and the DSDT (5.2.11.1). Each is
 * built in host memory, checksummed, and copied in with guest_write().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/aml.h"
#include "core/device.h"
#include "core/log.h"
#include "devices/acpi_pm.h"
#include "vmm/acpi.h"
#include "vmm/boot.h"

#define OEM_ID        "VMFORK"
#define OEM_TABLE_ID  "VMFORK  "
#define CREATOR_ID    "VMFK"
#define HYPERVISOR_ID "VMFORK  "

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;       /* of the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;       /* 2: the XSDT fields follow */
	uint32_t rsdt;          /* none: 64-bit guests read the XSDT */
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;   /* of all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* Generic Address Structure (5.2.3.2). */
struct acpi_gas {
	uint8_t space_id, bit_width, bit_offset, access_size;
	uint64_t address;
} __attribute__((packed));

#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl, dsdt;
	uint8_t reserved0, pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl, x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control, sleep_status;
	char hypervisor_id[8];
} __attribute__((packed));

#define FADT_REVISION        6
#define FADT_MINOR_VERSION   3
#define FADT_RESET_REG_SUP   (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)
/*
 * IA-PC boot architecture flags: what a guest may probe for. No 8042: the
 * i8042 is there to reset the machine, which Linux's reboot=k does by its
 * ports alone; hardware-reduced ACPI routes no ISA IRQ 1, so Linux's i8042
 * driver would only fail its probe (-EINVAL) after spending time on it.
 */
#define BOOT_LEGACY_DEVICES  (1u << 0)  /* COM1 is an ISA device */
#define BOOT_VGA_NOT_PRESENT (1u << 2)
#define BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)

struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_addr;
	uint32_t flags;
} __attribute__((packed));

#define MADT_REVISION    5
#define MADT_PCAT_COMPAT 1u  /* KVM's irqchip has the two 8259s too */

enum madt_type { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_INT_OVERRIDE = 2, MADT_LAPIC_NMI = 4 };

struct madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;         /* 1: enabled */
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t address, gsi_base;
} __attribute__((packed));

struct madt_override {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;         /* 0: as the ISA bus has it, edge and active high */
} __attribute__((packed));

struct madt_lapic_nmi {
	uint8_t type, length, processor_uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36 && sizeof(struct acpi_rsdp) == 36 &&
	       sizeof(struct acpi_gas) == 12, "ACPI header, RSDP and GAS sizes");
_Static_assert(sizeof(struct acpi_fadt) == 276 && offsetof(struct acpi_fadt, flags) == 112 &&
	       offsetof(struct acpi_fadt, x_dsdt) == 140 &&
	       offsetof(struct acpi_fadt, sleep_control) == 244, "FADT layout (ACPI 6.3)");
_Static_assert(sizeof(struct madt_lapic) == 8 && sizeof(struct madt_ioapic) == 12 &&
	       sizeof(struct madt_override) == 10 && sizeof(struct madt_lapic_nmi) == 6,
	       "MADT entry sizes");

/* The MP table's wiring (vmm/boot_mptable.c): the PIT's IRQ0 on IOAPIC pin 2, NMI on LINT1. */
#define IRQ0_GSI  2
#define NMI_LINT  1
#define ALL_CPUS  0xff

/* Where each table goes, from base; the DSDT last, as it takes what room is left. */
struct acpi_place {
	uint64_t xsdt, fadt, madt, dsdt;
};

#define XSDT_ENTRIES 2 /* FADT, MADT */

/* The tables being built in host memory, as they will sit from address base. */
struct acpi_build {
	uint8_t *buf;
	size_t cap, len;
	uint64_t base;
	bool firmware;                  /* for firmware: it has the CMOS RTC, reads FADT.DSDT */
	struct acpi_place at;
	struct acpi_rsdp rsdp;
};

static uint64_t align16(uint64_t v)
{
	return (v + 15) & ~15ULL;
}

static size_t madt_size(unsigned ncpus)
{
	return sizeof(struct acpi_madt) + ncpus * sizeof(struct madt_lapic) +
	       sizeof(struct madt_ioapic) + sizeof(struct madt_override) +
	       sizeof(struct madt_lapic_nmi);
}

static void place_tables(struct acpi_place *at, uint64_t base, unsigned ncpus)
{
	at->xsdt = base;
	at->fadt = align16(at->xsdt + sizeof(struct acpi_header) + XSDT_ENTRIES * 8);
	at->madt = align16(at->fadt + sizeof(struct acpi_fadt));
	at->dsdt = align16(at->madt + madt_size(ncpus));
}

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

static void fill_header(struct acpi_header *h, const char *sig, size_t len, uint8_t rev)
{
	memcpy(h->signature, sig, sizeof(h->signature));
	h->length = (uint32_t)len;
	h->revision = rev;
	memcpy(h->oem_id, OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = 1;
	memcpy(h->creator_id, CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = 1;
}

/* Header, checksum over the whole table, and into the build at gpa. */
static int put_table(struct acpi_build *b, uint64_t gpa, void *table, size_t len,
		     const char *sig, uint8_t rev)
{
	struct acpi_header *h = table;
	size_t off = (size_t)(gpa - b->base);

	if (gpa < b->base || off > b->cap || len > b->cap - off)
		return -ENOSPC;
	fill_header(h, sig, len, rev);
	h->checksum = 0;
	h->checksum = checksum(table, len);
	memcpy(b->buf + off, table, len);
	if (off + len > b->len)
		b->len = off + len;
	return 0;
}

/* ---- DSDT ---- */

/* Scope(\_SB) { every device's Device() }, and S5 with the type the acpi-pm device powers off on. */
static int write_aml(struct aml *aml, void *const *devs)
{
	const uint64_t s5[2] = { ACPI_PM_S5_TYPE, 0 };
	int ret = 0;

	aml_scope(aml, "\\_SB");
	for (unsigned i = 0; !ret && device_table[i]; i++)
		if (device_table[i]->describe && devs[i])
			ret = device_table[i]->describe(devs[i], aml);
	if (ret < 0)
		return ret;
	aml_end(aml);
	aml_name_package(aml, "_S5", s5, 2);
	return aml_finish(aml);
}

static int write_dsdt(struct acpi_build *b, void *const *devs)
{
	size_t cap = b->cap - (size_t)(b->at.dsdt - b->base);
	uint8_t *buf = calloc(1, cap);
	struct aml aml;
	int len;

	if (!buf)
		return -ENOMEM;
	aml_init(&aml, buf + sizeof(struct acpi_header), cap - sizeof(struct acpi_header));
	len = write_aml(&aml, devs);
	if (len == -ENOSPC)
		pr_err("ACPI: the DSDT needs more than the %zu bytes left for it", cap);
	else if (len < 0)
		pr_err("ACPI: cannot write the DSDT: %s", strerror(-len));
	if (len >= 0)
		len = put_table(b, b->at.dsdt, buf, sizeof(struct acpi_header) + (size_t)len, "DSDT",
				2 /* 64-bit integers */);
	free(buf);
	return len < 0 ? len : 0;
}

/* ---- MADT ---- */

/* Appends entries to a table being built. */
struct entry_writer {
	uint8_t *p;
};

static void put_entry(struct entry_writer *w, const void *entry, size_t len)
{
	memcpy(w->p, entry, len);
	w->p += len;
}

/* IOAPIC id ncpus, after the CPUs' APIC ids, as in the MP table. */
static void put_madt_entries(struct entry_writer *w, unsigned ncpus)
{
	struct madt_ioapic ioapic = {
		.type = MADT_IOAPIC, .length = sizeof(ioapic), .id = (uint8_t)ncpus,
		.address = (uint32_t)LAYOUT_IOAPIC, .gsi_base = 0,
	};
	struct madt_override irq0 = {
		.type = MADT_INT_OVERRIDE, .length = sizeof(irq0), .bus = 0, .source = 0,
		.gsi = IRQ0_GSI, .flags = 0,
	};
	struct madt_lapic_nmi nmi = {
		.type = MADT_LAPIC_NMI, .length = sizeof(nmi), .processor_uid = ALL_CPUS,
		.flags = 0, .lint = NMI_LINT,
	};

	for (unsigned i = 0; i < ncpus; i++) {
		struct madt_lapic cpu = {
			.type = MADT_LAPIC, .length = sizeof(cpu), .processor_uid = (uint8_t)i,
			.apic_id = (uint8_t)i, .flags = 1,
		};
		put_entry(w, &cpu, sizeof(cpu));
	}
	put_entry(w, &ioapic, sizeof(ioapic));
	/* Every other ISA IRQ is identity-mapped, edge and active high: ACPI's default. */
	put_entry(w, &irq0, sizeof(irq0));
	put_entry(w, &nmi, sizeof(nmi));
}

static int write_madt(struct acpi_build *b, unsigned ncpus)
{
	size_t len = madt_size(ncpus);
	uint8_t *buf = calloc(1, len);
	struct acpi_madt *madt = (struct acpi_madt *)buf;
	struct entry_writer w = { .p = buf + sizeof(*madt) };
	int ret;

	if (!buf)
		return -ENOMEM;
	madt->lapic_addr = (uint32_t)LAYOUT_LAPIC;
	madt->flags = MADT_PCAT_COMPAT;
	put_madt_entries(&w, ncpus);
	ret = put_table(b, b->at.madt, buf, len, "APIC", MADT_REVISION);
	free(buf);
	return ret;
}

/* ---- FADT, XSDT, RSDP ---- */

static struct acpi_gas io_register(uint16_t port)
{
	return (struct acpi_gas){
		.space_id = GAS_SYSTEM_IO, .bit_width = 8, .access_size = GAS_ACCESS_BYTE,
		.address = port,
	};
}

/*
 * Hardware-reduced: no PM1, GPE or PM timer blocks, no SCI; sleep and reset
 * by register. SeaBIOS reads only the 32-bit DSDT field; a kernel booted
 * directly gets X_DSDT alone, which it prefers.
 */
static int write_fadt(struct acpi_build *b)
{
	struct acpi_fadt fadt = {
		.iapc_boot_arch = BOOT_LEGACY_DEVICES | BOOT_VGA_NOT_PRESENT |
				  (b->firmware ? 0 : BOOT_CMOS_RTC_NOT_PRESENT),
		.flags = FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP,
		.reset_reg = io_register(ACPI_RESET_PORT),
		.reset_value = ACPI_RESET_VALUE,
		.minor_version = FADT_MINOR_VERSION,
		.dsdt = b->firmware ? (uint32_t)b->at.dsdt : 0,
		.x_dsdt = b->at.dsdt,
		.sleep_control = io_register(ACPI_SLEEP_CTL_PORT),
		.sleep_status = io_register(ACPI_SLEEP_STS_PORT),
	};

	memcpy(fadt.hypervisor_id, HYPERVISOR_ID, sizeof(fadt.hypervisor_id));
	return put_table(b, b->at.fadt, &fadt, sizeof(fadt), "FACP", FADT_REVISION);
}

static int write_xsdt(struct acpi_build *b)
{
	struct {
		struct acpi_header h;
		uint64_t entry[XSDT_ENTRIES];
	} __attribute__((packed)) xsdt = { .entry = { b->at.fadt, b->at.madt } };

	return put_table(b, b->at.xsdt, &xsdt, sizeof(xsdt), "XSDT", 1);
}

static void write_rsdp(struct acpi_build *b)
{
	struct acpi_rsdp *rsdp = &b->rsdp;

	*rsdp = (struct acpi_rsdp){ .revision = 2, .length = sizeof(*rsdp), .xsdt = b->at.xsdt };
	memcpy(rsdp->signature, "RSD PTR ", sizeof(rsdp->signature));
	memcpy(rsdp->oem_id, OEM_ID, sizeof(rsdp->oem_id));
	rsdp->checksum = checksum(rsdp, offsetof(struct acpi_rsdp, length));
	rsdp->ext_checksum = checksum(rsdp, sizeof(*rsdp));
}

/* Every table into b (its buf of cap bytes at base), and the RSDP that points at them. */
static int build(struct acpi_build *b, unsigned ncpus, void *const *devs)
{
	int ret;

	/* Processor UIDs and APIC ids are bytes, and the IOAPIC takes id ncpus. */
	if (ncpus == 0 || ncpus > VM_MAX_CPUS || ncpus >= 0xff) {
		pr_err("ACPI: %u CPUs is outside 1..%d", ncpus, VM_MAX_CPUS);
		return -EINVAL;
	}
	place_tables(&b->at, b->base, ncpus);
	ret = write_dsdt(b, devs);
	if (!ret)
		ret = write_madt(b, ncpus);
	if (!ret)
		ret = write_fadt(b);
	if (!ret)
		ret = write_xsdt(b);
	if (!ret)
		write_rsdp(b);
	return ret;
}

int acpi_write_tables(const struct guest_mem *mem, unsigned ncpus, void *const *devs)
{
	uint64_t base = align16(ACPI_RSDP_GPA + sizeof(struct acpi_rsdp));
	struct acpi_build b = { .cap = LAYOUT_ACPI_END - base, .base = base };
	int ret;

	b.buf = calloc(1, b.cap);
	if (!b.buf)
		return -ENOMEM;
	ret = build(&b, ncpus, devs);
	if (!ret)
		ret = guest_write(mem, base, b.buf, b.len);
	if (!ret)
		ret = guest_write(mem, ACPI_RSDP_GPA, &b.rsdp, sizeof(b.rsdp));
	if (!ret)
		ret = boot_set_acpi_rsdp(mem, ACPI_RSDP_GPA);
	free(b.buf);
	return ret;
}

int acpi_build_blob(unsigned ncpus, void *const *devs, struct acpi_blob *out)
{
	struct acpi_build b = { .cap = ACPI_BLOB_MAX, .firmware = true };
	int ret;

	memset(out, 0, sizeof(*out));
	b.buf = calloc(1, b.cap);
	if (!b.buf)
		return -ENOMEM;
	ret = build(&b, ncpus, devs);
	if (ret < 0) {
		free(b.buf);
		return ret;
	}
	out->tables = b.buf;
	out->len = b.len;
	memcpy(out->rsdp, &b.rsdp, sizeof(b.rsdp));
	out->rsdp_xsdt = offsetof(struct acpi_rsdp, xsdt);
	out->rsdp_sum = offsetof(struct acpi_rsdp, checksum);
	out->rsdp_sum_len = offsetof(struct acpi_rsdp, length);
	out->rsdp_ext_sum = offsetof(struct acpi_rsdp, ext_checksum);
	for (unsigned i = 0; i < XSDT_ENTRIES; i++)
		out->ptr64[out->nptr64++] = (uint32_t)(b.at.xsdt + sizeof(struct acpi_header) + 8 * i);
	out->ptr64[out->nptr64++] = (uint32_t)(b.at.fadt + offsetof(struct acpi_fadt, x_dsdt));
	out->ptr32 = (uint32_t)(b.at.fadt + offsetof(struct acpi_fadt, dsdt));
	out->sums[0] = (struct acpi_range){ (uint32_t)b.at.xsdt,
					    sizeof(struct acpi_header) + 8 * XSDT_ENTRIES };
	out->sums[1] = (struct acpi_range){ (uint32_t)b.at.fadt, sizeof(struct acpi_fadt) };
	return 0;
}

void acpi_blob_free(struct acpi_blob *blob)
{
	free(blob->tables);
	blob->tables = NULL;
}
