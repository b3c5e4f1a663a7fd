/*
 * An Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
 * (Linux with CONFIG_X86_MPPARSE) learns its CPUs, the IOAPIC and how ISA
 * IRQs reach it. The floating pointer goes at LAYOUT_MPTABLE (the last KiB
 * of base memory, which Linux scans) and the configuration table right after
 * it, in the area e820 reserves up to 1 MiB.
 */
#include <errno.h>
#include <string.h>

#include "core/layout.h"
#include "core/log.h"
#include "vmm/boot.h"

#define MP_SPEC_REV     4       /* 1.4 */
#define MP_LAPIC_VER    0x14    /* an integrated local APIC, as KVM's reports */
#define MP_IOAPIC_VER   0x11    /* KVM's IOAPIC */
#define MP_CPU_SIG      0x600   /* family 6; Linux does not look further */
#define MP_CPU_FEATURES 0x201   /* FPU and APIC present */
#define MP_ISA_IRQS     16
#define MP_IRQ0_PIN     2       /* the PIT's IRQ0 is wired to IOAPIC pin 2 */

enum mp_entry_type { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum mp_irq_type { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define MP_CPU_EN 0x01
#define MP_CPU_BP 0x02
#define MP_IOAPIC_EN 0x01

struct mpf_intel {
	char signature[4];      /* "_MP_" */
	uint32_t physptr;       /* the configuration table */
	uint8_t length;         /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t feature1;       /* 0: a configuration table is present */
	uint8_t feature2;
	uint8_t feature3[3];
} __attribute__((packed));

struct mpc_table {
	char signature[4];      /* "PCMP" */
	uint16_t length;        /* of the base table, entries included */
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count;         /* entries */
	uint32_t lapic;         /* local APIC address */
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t signature, features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type, apicid, apicver, flags;
	uint32_t addr;
} __attribute__((packed));

/* Both interrupt entry kinds share this layout; dst is an IOAPIC id or a LAPIC id. */
struct mpc_intsrc {
	uint8_t type, irqtype;
	uint16_t irqflag;       /* 0: polarity and trigger conform to the bus */
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header is 44 bytes");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry is 20 bytes");
_Static_assert(sizeof(struct mpc_bus) == 8 && sizeof(struct mpc_ioapic) == 8 &&
	       sizeof(struct mpc_intsrc) == 8, "MP entries are 8 bytes");

#define MP_CONFIG_GPA (LAYOUT_MPTABLE + sizeof(struct mpf_intel))
/* ISA IRQ 2 is the PIC cascade; pin 2 already carries IRQ0, so IRQ2 gets no entry. */
#define MP_NR_INTSRC  (MP_ISA_IRQS - 1)
#define MP_NR_LINT    2

static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

static size_t mp_config_size(unsigned ncpus)
{
	return sizeof(struct mpc_table) + ncpus * sizeof(struct mpc_cpu) +
	       sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	       (MP_NR_INTSRC + MP_NR_LINT) * sizeof(struct mpc_intsrc);
}

/* Appends entries to the table being built; p walks forward through it. */
struct mp_writer {
	uint8_t *p;
	uint16_t count;
};

static void mp_put(struct mp_writer *w, const void *entry, size_t len)
{
	memcpy(w->p, entry, len);
	w->p += len;
	w->count++;
}

static void mp_put_cpus(struct mp_writer *w, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = MP_LAPIC_VER,
			.cpuflag = MP_CPU_EN | (i == 0 ? MP_CPU_BP : 0),
			.signature = MP_CPU_SIG, .features = MP_CPU_FEATURES,
		};
		mp_put(w, &cpu, sizeof(cpu));
	}
}

static void mp_put_irqs(struct mp_writer *w, uint8_t ioapic_id)
{
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
		struct mpc_intsrc src = {
			.type = MP_INTSRC, .irqtype = MP_INT, .srcbus = 0,
			.srcbusirq = (uint8_t)irq, .dstapic = ioapic_id,
			.dstirq = irq == 0 ? MP_IRQ0_PIN : (uint8_t)irq,
		};
		if (irq == 2)
			continue;
		mp_put(w, &src, sizeof(src));
	}
}

/* The 8259's output on LINT0 (virtual-wire mode) and NMI on LINT1 of every CPU. */
static void mp_put_lints(struct mp_writer *w)
{
	static const uint8_t kind[MP_NR_LINT] = { MP_EXTINT, MP_NMI };

	for (uint8_t lint = 0; lint < MP_NR_LINT; lint++) {
		struct mpc_intsrc src = {
			.type = MP_LINTSRC, .irqtype = kind[lint], .srcbus = 0,
			.srcbusirq = 0, .dstapic = 0xff, .dstirq = lint,
		};
		mp_put(w, &src, sizeof(src));
	}
}

static void mp_fill_config(uint8_t *table, unsigned ncpus, size_t size)
{
	struct mpc_table hdr = {
		.length = (uint16_t)size, .spec_rev = MP_SPEC_REV, .lapic = (uint32_t)LAYOUT_LAPIC,
	};
	struct mp_writer w = { .p = table + sizeof(hdr) };
	struct mpc_bus bus = { .type = MP_BUS, .busid = 0 };
	struct mpc_ioapic ioapic = {
		.type = MP_IOAPIC, .apicid = (uint8_t)ncpus, .apicver = MP_IOAPIC_VER,
		.flags = MP_IOAPIC_EN, .addr = (uint32_t)LAYOUT_IOAPIC,
	};

	/* Fixed-size, unterminated strings: memcpy says so where an initializer would not. */
	memcpy(hdr.signature, "PCMP", sizeof(hdr.signature));
	memcpy(hdr.oem, "VMFORK  ", sizeof(hdr.oem));
	memcpy(hdr.product, "vm-fork     ", sizeof(hdr.product));
	memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype));
	mp_put_cpus(&w, ncpus);
	mp_put(&w, &bus, sizeof(bus));
	mp_put(&w, &ioapic, sizeof(ioapic));
	mp_put_irqs(&w, ioapic.apicid);
	mp_put_lints(&w);
	hdr.count = w.count;
	memcpy(table, &hdr, sizeof(hdr));
	table[offsetof(struct mpc_table, checksum)] = mp_checksum(table, size);
}

int boot_write_mptable(const struct guest_mem *mem, unsigned ncpus)
{
	size_t size = mp_config_size(ncpus);
	struct mpf_intel mpf = {
		.physptr = (uint32_t)MP_CONFIG_GPA, .length = 1,
		.spec_rev = MP_SPEC_REV,
	};
	uint8_t *table;

	/* APIC ids are 8 bits and 0xff is broadcast; the IOAPIC takes id ncpus. */
	if (ncpus == 0 || ncpus > VM_MAX_CPUS || ncpus >= 0xff) {
		pr_err("MP table: %u CPUs is outside 1..%d", ncpus, VM_MAX_CPUS);
		return -EINVAL;
	}
	if (MP_CONFIG_GPA + size > LAYOUT_HIMEM)
		return -E2BIG;
	table = gpa_ptr(mem, MP_CONFIG_GPA, size);
	if (!table)
		return -EFAULT;
	mp_fill_config(table, ncpus, size);
	memcpy(mpf.signature, "_MP_", sizeof(mpf.signature));
	mpf.checksum = mp_checksum(&mpf, sizeof(mpf));
	return guest_write(mem, LAYOUT_MPTABLE, &mpf, sizeof(mpf));
}
