/*
 * The ACPI tables as a guest reads them, built into guest RAM without KVM
 * from the real devices of the table: where Linux finds the RSDP, checksums,
 * the links between tables, every FADT and MADT field that matters, the
 * DSDT's devices, and whether ACPICA's own disassembler (iasl -d) reads
 * each table without a complaint.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define boot_e820_entry linux_boot_e820_entry
#include <asm/bootparam.h>
#undef boot_e820_entry

#include "core/bus.h"
#include "core/device.h"
#include "core/layout.h"
#include "devices/acpi_pm.h"
#include "vmm/acpi.h"
#include "vmm/boot.h"

static struct guest_mem acpi_mem;
static struct bus acpi_bus;
static void *acpi_devs[DEVICE_MAX];

static void stub_irq(void *opaque, unsigned gsi, int level) {}
static void stub_out(void *opaque, const uint8_t *buf, size_t len) {}
static void stub_void(void *opaque) {}
static void stub_event(void *opaque, uint32_t events) {}
static uint64_t stub_id(void *opaque) { return 0; }

static void acpi_setup(void)
{
	const struct device_host host = {
		.set_irq = stub_irq, .console_out = stub_out, .reset_machine = stub_void,
		.poweroff = stub_void, .acpi_event = stub_event, .vm_id = stub_id,
		.mem = &acpi_mem,
	};

	cr_assert_eq(guest_mem_create(&acpi_mem, 64 * MiB, NULL), 0);
	bus_init(&acpi_bus);
	for (unsigned i = 0; device_table[i]; i++)
		cr_assert_eq(device_table[i]->create(&acpi_devs[i], &acpi_bus, &host), 0, "%s",
			     device_table[i]->name);
}

static void acpi_teardown(void)
{
	for (unsigned i = 0; device_table[i]; i++)
		device_table[i]->destroy(acpi_devs[i]);
	guest_mem_destroy(&acpi_mem);
}

TestSuite(acpi, .init = acpi_setup, .fini = acpi_teardown);

static uint64_t le(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;

	while (len--)
		v = v << 8 | p[len];
	return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static const uint8_t *at(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gpa_ptr(&acpi_mem, gpa, len);

	cr_assert(p, "%#llx is not RAM", (unsigned long long)gpa);
	return p;
}

/* The table at gpa: its signature, a length inside the ACPI area, and a checksum of 0. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *t = at(gpa, 36);
	uint32_t len = (uint32_t)le(t + 4, 4);

	cr_assert(!memcmp(t, sig, 4), "the table at %#llx is '%.4s', want %s",
		  (unsigned long long)gpa, (const char *)t, sig);
	cr_assert(len >= 36 && gpa >= LAYOUT_ACPI && gpa + len <= LAYOUT_ACPI_END,
		  "%s: %u bytes at %#llx", sig, len, (unsigned long long)gpa);
	cr_assert_eq(sum(at(gpa, len), len), 0, "%s: checksum", sig);
	cr_assert(!memcmp(t + 10, "VMFORK", 6), "%s: OEM id", sig);
	return t;
}

/* Linux's scan: "RSD PTR " on a 16-byte boundary in 0xe0000-0xfffff, the 20-byte checksum right. */
static uint64_t scan_rsdp(void)
{
	for (uint64_t gpa = 0xe0000; gpa < 0x100000; gpa += 16) {
		const uint8_t *p = at(gpa, 20);

		if (!memcmp(p, "RSD PTR ", 8) && sum(p, 20) == 0)
			return gpa;
	}
	return 0;
}

static void build(unsigned ncpus)
{
	cr_assert_eq(acpi_write_tables(&acpi_mem, ncpus, acpi_devs), 0);
}

static const uint8_t *rsdp(void)
{
	const uint8_t *r = at(ACPI_RSDP_GPA, 36);

	cr_assert_eq(scan_rsdp(), ACPI_RSDP_GPA, "Linux's scan does not find the RSDP");
	cr_assert_eq(r[15], 2, "revision");
	cr_assert_eq(le(r + 20, 4), 36, "length");
	cr_assert_eq(sum(r, 36), 0, "extended checksum");
	return r;
}

/* The XSDT's entry whose table has signature sig. */
static const uint8_t *xsdt_find(const char *sig)
{
	const uint8_t *x = table(le(rsdp() + 24, 8), "XSDT");
	uint32_t n = ((uint32_t)le(x + 4, 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t gpa = le(x + 36 + 8 * i, 8);

		if (!memcmp(at(gpa, 4), sig, 4))
			return table(gpa, sig);
	}
	cr_assert_fail("the XSDT has no %s", sig);
	return NULL;
}

static const uint8_t *dsdt(void)
{
	return table(le(xsdt_find("FACP") + 140, 8), "DSDT");
}

Test(acpi, rsdp_where_linux_looks_and_in_the_zero_page)
{
	struct boot_image elf = { .kind = BOOT_IMAGE_ELF, .entry = 0x1000000,
				  .load_start = 0x1000000, .load_end = 0x1100000 };
	const struct boot_params *bp;

	cr_assert_eq(boot_write_params(&acpi_mem, &elf, "", 0, 0), 0);
	build(1);
	rsdp();
	bp = (const void *)at(LAYOUT_ZERO_PAGE, sizeof(*bp));
	cr_assert_eq(bp->acpi_rsdp_addr, ACPI_RSDP_GPA);
	cr_assert_eq(le(at(ACPI_RSDP_GPA + 16, 4), 4), 0, "no RSDT: 64-bit guests read the XSDT");
}

static void check_gas(const uint8_t *g, unsigned port, const char *what)
{
	cr_assert_eq(g[0], 1, "%s: SystemIO", what);
	cr_assert_eq(g[1], 8, "%s: 8 bits", what);
	cr_assert_eq(g[2], 0, "%s: bit offset", what);
	cr_assert_eq(g[3], 1, "%s: byte access", what);
	cr_assert_eq(le(g + 4, 8), port, "%s: port %#llx", what, (unsigned long long)le(g + 4, 8));
}

Test(acpi, fadt_is_hardware_reduced_with_sleep_and_reset_registers)
{
	const uint8_t *f;
	uint32_t flags;

	build(1);
	f = xsdt_find("FACP");
	cr_assert_eq(le(f + 4, 4), 276, "ACPI 6 FADT length");
	cr_assert_eq(f[8], 6, "major revision");
	flags = (uint32_t)le(f + 112, 4);
	cr_assert(flags & (1u << 20), "HW_REDUCED_ACPI");
	cr_assert(flags & (1u << 10), "RESET_REG_SUP");
	check_gas(f + 116, ACPI_RESET_PORT, "RESET_REG");
	cr_assert_eq(f[128], ACPI_RESET_VALUE);
	check_gas(f + 244, ACPI_SLEEP_CTL_PORT, "SLEEP_CONTROL_REG");
	check_gas(f + 256, ACPI_SLEEP_STS_PORT, "SLEEP_STATUS_REG");
	/* Legacy devices (COM1), no 8042 for Linux to probe, no VGA, no CMOS RTC. */
	cr_assert_eq(le(f + 109, 2), 0x25, "IA-PC boot flags %#llx", (unsigned long long)le(f + 109, 2));
	cr_assert_eq(le(f + 40, 4), 0, "the 32-bit DSDT field is 0 when X_DSDT is set");
	cr_assert_eq(le(f + 46, 2), 0, "no SCI");
	for (unsigned off = 56; off < 88; off += 4)
		cr_assert_eq(le(f + off, 4), 0, "no fixed hardware block at offset %u", off);
	cr_assert(!memcmp(f + 268, "VMFORK", 6), "hypervisor vendor");
	dsdt();
}

struct madt_seen {
	unsigned cpus, ioapics, overrides, nmis;
};

static void madt_entry(const uint8_t *e, unsigned ncpus, struct madt_seen *s)
{
	switch (e[0]) {
	case 0:
		cr_assert_eq(e[1], 8);
		cr_assert_eq(e[2], s->cpus, "processor UIDs 0..n-1 in order");
		cr_assert_eq(e[3], s->cpus, "APIC ids 0..n-1 in order");
		cr_assert_eq(le(e + 4, 4), 1, "enabled");
		s->cpus++;
		break;
	case 1:
		cr_assert_eq(e[1], 12);
		cr_assert_eq(e[2], ncpus, "IOAPIC id, as in the MP table");
		cr_assert_eq(le(e + 4, 4), LAYOUT_IOAPIC);
		cr_assert_eq(le(e + 8, 4), 0, "GSI base");
		s->ioapics++;
		break;
	case 2:
		/* The MP table's one exception to identity: IRQ0 on pin 2, as the ISA bus has it. */
		cr_assert_eq(e[1], 10);
		cr_assert_eq(e[2], 0, "ISA bus");
		cr_assert_eq(e[3], 0, "IRQ0");
		cr_assert_eq(le(e + 4, 4), 2, "GSI 2");
		cr_assert_eq(le(e + 8, 2), 0, "conforms to the bus: edge, active high");
		s->overrides++;
		break;
	case 4:
		cr_assert_eq(e[1], 6);
		cr_assert_eq(e[2], 0xff, "all CPUs");
		cr_assert_eq(e[5], 1, "LINT1, as in the MP table");
		s->nmis++;
		break;
	default:
		cr_assert_fail("MADT entry of type %u", e[0]);
	}
}

static void check_madt(unsigned ncpus)
{
	const uint8_t *m;
	uint32_t len;
	struct madt_seen s = { 0 };

	build(ncpus);
	m = xsdt_find("APIC");
	len = (uint32_t)le(m + 4, 4);
	cr_assert_eq(le(m + 36, 4), LAYOUT_LAPIC);
	cr_assert_eq(le(m + 40, 4) & 1, 1, "PCAT_COMPAT: KVM has the 8259s");
	for (uint32_t off = 44; off < len; off += m[off + 1]) {
		cr_assert(m[off + 1] >= 2 && off + m[off + 1] <= len, "entry at %u overruns", off);
		madt_entry(m + off, ncpus, &s);
	}
	cr_assert_eq(s.cpus, ncpus);
	cr_assert_eq(s.ioapics, 1);
	cr_assert_eq(s.overrides, 1);
	cr_assert_eq(s.nmis, 1);
}

Test(acpi, madt_one_cpu)
{
	check_madt(1);
}

Test(acpi, madt_most_cpus)
{
	check_madt(VM_MAX_CPUS);
}

Test(acpi, cpu_counts_out_of_range)
{
	cr_assert_eq(acpi_write_tables(&acpi_mem, 0, acpi_devs), -EINVAL);
	cr_assert_eq(acpi_write_tables(&acpi_mem, VM_MAX_CPUS + 1, acpi_devs), -EINVAL);
}

/* Where the n bytes of needle first are in the DSDT from offset from on, or -1. */
static long dsdt_find_from(const uint8_t *d, long from, const char *needle, size_t n)
{
	uint32_t len = (uint32_t)le(d + 4, 4);

	for (uint32_t i = (uint32_t)from; i + n <= len; i++)
		if (!memcmp(d + i, needle, n))
			return i;
	return -1;
}

static long dsdt_find(const uint8_t *d, const char *needle, size_t n)
{
	return dsdt_find_from(d, 36, needle, n);
}


Test(acpi, dsdt_has_every_device_in_table_order_and_s5)
{
	const uint8_t *d;
	long com1, ged, s5;

	build(2);
	d = dsdt();
	cr_assert_eq(d[8], 2, "revision 2: 64-bit integers");
	cr_assert(dsdt_find(d, "\x10", 1) == 36, "the body starts with Scope");
	cr_assert(dsdt_find(d, "\x5c_SB_", 5) > 36, "Scope(\\_SB)");
	com1 = dsdt_find(d, "COM1", 4);
	ged = dsdt_find(d, "GED0", 4);
	s5 = dsdt_find(d, "_S5_\x12", 5);
	cr_assert(com1 > 0 && ged > com1, "COM1 (%ld), then GED0 (%ld), in table order", com1, ged);
	cr_assert(s5 > ged, "_S5 after the devices");
	/* Package(2) { ACPI_PM_S5_TYPE, 0 }: the type the acpi-pm device powers off on. */
	cr_assert_eq(d[s5 + 6], 2);
	cr_assert_eq(d[s5 + 7], 0x0a);
	cr_assert_eq(d[s5 + 8], ACPI_PM_S5_TYPE);
}

/*
 * Linux's GED driver (6.1) takes every resource of the GED's _CRS for an
 * interrupt, and gives the device up at anything else.
 */
Test(acpi, ged_crs_is_one_interrupt)
{
	const uint8_t *d;
	long crs;

	build(1);
	d = dsdt();
	crs = dsdt_find_from(d, dsdt_find(d, "GED0", 4), "_CRS\x11", 5);
	cr_assert(crs > 0);
	/* Buffer, PkgLength, BytePrefix, size: one Extended Interrupt (9) and the end tag (2). */
	cr_assert_eq(d[crs + 6], 0x0a);
	cr_assert_eq(d[crs + 7], 11, "GED0's _CRS holds %u bytes of resources", d[crs + 7]);
	cr_assert_eq(d[crs + 8], 0x89, "GED0's _CRS does not start with an Interrupt()");
	cr_assert_eq(le(d + crs + 13, 4), GSI_GED);
}

Test(acpi, devices_absent_are_not_described)
{
	void *none[DEVICE_MAX] = { 0 };

	cr_assert_eq(acpi_write_tables(&acpi_mem, 1, none), 0);
	cr_assert_eq(dsdt_find(dsdt(), "COM1", 4), -1);
}

/* ---- iasl -d ---- */

static void dump(const char *dir, const char *name, const uint8_t *t, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "wb");
	cr_assert(f && fwrite(t, 1, len, f) == len && fclose(f) == 0, "%s", path);
}

/* Run cmd; its output (malloc'd) and exit status. */
static char *run(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	char *out = calloc(1, 1 << 16);
	size_t n;

	cr_assert(p && out);
	n = fread(out, 1, (1 << 16) - 1, p);
	out[n] = 0;
	*status = pclose(p);
	return out;
}

/* iasl -d on name.dat: succeeds, and says nothing of an error or a warning. */
static char *disassemble(const char *dir, const char *name)
{
	char cmd[256], path[128];
	int status;
	char *out;

	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat 2>&1", dir, name);
	out = run(cmd, &status);
	cr_assert_eq(status, 0, "%s: status %d\n%s", cmd, status, out);
	cr_assert(!strcasestr(out, "error") && !strcasestr(out, "warning"), "%s:\n%s", cmd, out);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	free(out);
	snprintf(cmd, sizeof(cmd), "cat %s", path);
	return run(cmd, &status);
}

static void cleanup(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *iasl_dir(char *dir)
{
	if (system("iasl -v >/dev/null 2>&1") != 0)
		cr_skip_test("skipped: no iasl (apt-get install acpica-tools; make deps)");
	cr_assert(mkdtemp(dir), "mkdtemp");
	return dir;
}

/* The RSDP is not a table iasl reads from a file: the structural checks above cover it. */
Test(acpi, iasl_reads_every_table)
{
	char dir[] = "/tmp/vm-fork-acpi-XXXXXX";
	static const char *const sigs[] = { "XSDT", "FACP", "APIC", NULL };
	char *dsl;

	iasl_dir(dir);
	build(4);
	for (unsigned i = 0; sigs[i]; i++) {
		const uint8_t *t = sigs[i][0] == 'X' ? table(le(rsdp() + 24, 8), "XSDT")
						      : xsdt_find(sigs[i]);

		dump(dir, sigs[i], t, le(t + 4, 4));
		dsl = disassemble(dir, sigs[i]);
		cr_assert(strlen(dsl) > 0, "%s: no .dsl", sigs[i]);
		if (!strcmp(sigs[i], "FACP"))
			cr_assert(strstr(dsl, "Hardware Reduced (V5) : 1") &&
				  strstr(dsl, "Reset Register Supported (V2) : 1"), "FADT:\n%s", dsl);
		free(dsl);
	}
	cleanup(dir);
}

Test(acpi, iasl_decodes_the_dsdt)
{
	char dir[] = "/tmp/vm-fork-acpi-XXXXXX";
	const uint8_t *d;
	char *dsl;

	iasl_dir(dir);
	build(1);
	d = dsdt();
	dump(dir, "dsdt", d, le(d + 4, 4));
	dsl = disassemble(dir, "dsdt");
	cr_log_info("DSDT:\n%s", dsl);
	cr_assert(strstr(dsl, "Device (GED0)"), "%s", dsl);
	cr_assert(strstr(dsl, "Device (COM1)"), "%s", dsl);
	cr_assert(strstr(dsl, "Name (_S5, Package"), "%s", dsl);
	cr_assert(strstr(dsl, "EisaId (\"PNP0501\")"), "%s", dsl);
	cr_assert(strstr(dsl, "Method (_EVT, 1, Serialized)"), "%s", dsl);
	cr_assert(strstr(dsl, "Notify (\\_SB.VGEN, 0x80)"), "%s", dsl);
	free(dsl);
	cleanup(dir);
}
