#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cpuid.h"
#include "core/log.h"

static const struct {
	const char *name;
	struct cpuid_mask_bit bit;
} features[] = {
	{ "sse3", { 1, 0, CPUID_ECX, 0 } },      { "pclmulqdq", { 1, 0, CPUID_ECX, 1 } },
	{ "vmx", { 1, 0, CPUID_ECX, 5 } },       { "ssse3", { 1, 0, CPUID_ECX, 9 } },
	{ "fma", { 1, 0, CPUID_ECX, 12 } },      { "cx16", { 1, 0, CPUID_ECX, 13 } },
	{ "pcid", { 1, 0, CPUID_ECX, 17 } },     { "sse4_1", { 1, 0, CPUID_ECX, 19 } },
	{ "sse4_2", { 1, 0, CPUID_ECX, 20 } },   { "x2apic", { 1, 0, CPUID_ECX, 21 } },
	{ "movbe", { 1, 0, CPUID_ECX, 22 } },    { "popcnt", { 1, 0, CPUID_ECX, 23 } },
	{ "tsc_deadline", { 1, 0, CPUID_ECX, 24 } }, { "aes", { 1, 0, CPUID_ECX, 25 } },
	{ "xsave", { 1, 0, CPUID_ECX, 26 } },    { "avx", { 1, 0, CPUID_ECX, 28 } },
	{ "f16c", { 1, 0, CPUID_ECX, 29 } },     { "rdrand", { 1, 0, CPUID_ECX, 30 } },
	{ "mtrr", { 1, 0, CPUID_EDX, 12 } },     { "pse36", { 1, 0, CPUID_EDX, 17 } },
	{ "fsgsbase", { 7, 0, CPUID_EBX, 0 } },  { "bmi1", { 7, 0, CPUID_EBX, 3 } },
	{ "hle", { 7, 0, CPUID_EBX, 4 } },       { "avx2", { 7, 0, CPUID_EBX, 5 } },
	{ "smep", { 7, 0, CPUID_EBX, 7 } },      { "bmi2", { 7, 0, CPUID_EBX, 8 } },
	{ "erms", { 7, 0, CPUID_EBX, 9 } },      { "invpcid", { 7, 0, CPUID_EBX, 10 } },
	{ "rtm", { 7, 0, CPUID_EBX, 11 } },      { "mpx", { 7, 0, CPUID_EBX, 14 } },
	{ "avx512f", { 7, 0, CPUID_EBX, 16 } },  { "avx512dq", { 7, 0, CPUID_EBX, 17 } },
	{ "rdseed", { 7, 0, CPUID_EBX, 18 } },   { "adx", { 7, 0, CPUID_EBX, 19 } },
	{ "smap", { 7, 0, CPUID_EBX, 20 } },     { "clflushopt", { 7, 0, CPUID_EBX, 23 } },
	{ "avx512cd", { 7, 0, CPUID_EBX, 28 } }, { "sha", { 7, 0, CPUID_EBX, 29 } },
	{ "avx512bw", { 7, 0, CPUID_EBX, 30 } }, { "avx512vl", { 7, 0, CPUID_EBX, 31 } },
	{ "umip", { 7, 0, CPUID_ECX, 2 } },      { "pku", { 7, 0, CPUID_ECX, 3 } },
	{ "la57", { 7, 0, CPUID_ECX, 16 } },     { "rdpid", { 7, 0, CPUID_ECX, 22 } },
	{ "xsaveopt", { 0xd, 1, CPUID_EAX, 0 } }, { "xsavec", { 0xd, 1, CPUID_EAX, 1 } },
	{ "xsaves", { 0xd, 1, CPUID_EAX, 3 } },  { "rdtscp", { 0x80000001, 0, CPUID_EDX, 27 } },
	{ "pdpe1gb", { 0x80000001, 0, CPUID_EDX, 26 } },
};

#define NFEATURES (sizeof(features) / sizeof(features[0]))

const char *cpuid_feature_names(void)
{
	static char names[1024];

	if (!names[0]) {
		for (size_t i = 0; i < NFEATURES; i++) {
			strcat(names, features[i].name);
			if (i + 1 < NFEATURES)
				strcat(names, " ");
		}
	}
	return names;
}

static int parse_reg(const char *s, enum cpuid_reg *reg)
{
	static const char *const regs[] = { "eax", "ebx", "ecx", "edx" };

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(s, regs[i])) {
			*reg = (enum cpuid_reg)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (end == s || *end || errno || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* LEAF[.SUBLEAF]:REG:BIT */
static int parse_raw(const char *item, struct cpuid_mask_bit *bit)
{
	char buf[64], *reg, *bitno, *sub;
	uint32_t b;

	if (strlen(item) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, item);
	reg = strchr(buf, ':');
	bitno = reg ? strchr(reg + 1, ':') : NULL;
	if (!bitno)
		return -EINVAL;
	*reg++ = 0;
	*bitno++ = 0;
	sub = strchr(buf, '.');
	if (sub)
		*sub++ = 0;
	bit->subleaf = 0;
	if (parse_u32(buf, &bit->leaf) < 0 || (sub && parse_u32(sub, &bit->subleaf) < 0) ||
	    parse_reg(reg, &bit->reg) < 0 || parse_u32(bitno, &b) < 0 || b > 31)
		return -EINVAL;
	bit->bit = (uint8_t)b;
	return 0;
}

static int parse_item(const char *item, struct cpuid_mask_bit *bit)
{
	for (size_t i = 0; i < NFEATURES; i++) {
		if (!strcasecmp(item, features[i].name)) {
			*bit = features[i].bit;
			return 0;
		}
	}
	return parse_raw(item, bit);
}

int cpuid_mask_parse(const char *spec, struct cpuid_mask *mask)
{
	char *copy = strdup(spec), *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	mask->n = 0;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (mask->n == CPUID_MAX_MASKS) {
			pr_err("--cpuid-mask: more than %d features", CPUID_MAX_MASKS);
			ret = -EINVAL;
			break;
		}
		if (parse_item(item, &mask->bits[mask->n]) < 0) {
			pr_err("--cpuid-mask: '%s' is neither a known feature (%s) nor "
			       "LEAF[.SUBLEAF]:REG:BIT", item, cpuid_feature_names());
			ret = -EINVAL;
			break;
		}
		mask->n++;
	}
	free(copy);
	return ret;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t leaf, uint32_t subleaf)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		int indexed = e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

		if (e->function == leaf && (!indexed || e->index == subleaf))
			return e;
	}
	return NULL;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, enum cpuid_reg reg)
{
	switch (reg) {
	case CPUID_EAX: return &e->eax;
	case CPUID_EBX: return &e->ebx;
	case CPUID_ECX: return &e->ecx;
	default: return &e->edx;
	}
}

static unsigned bits_for(unsigned n)
{
	unsigned bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

/* Leaves 0xB and 0x1F: level 0 SMT (one thread), level 1 core (ncpus cores). */
static void set_topology_leaf(struct kvm_cpuid_entry2 *e, unsigned apic_id, unsigned ncpus)
{
	e->edx = apic_id;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1u << 8) | 0;
		break;
	case 1:
		e->eax = bits_for(ncpus);
		e->ebx = ncpus;
		e->ecx = (2u << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
	}
}

static void set_topology(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (ncpus << 16) | (apic_id << 24);
			e->edx |= 1u << 28; /* HTT: EBX[23:16] is valid */
			e->ecx |= 1u << 31; /* running under a hypervisor */
			break;
		case 4:
			if (e->eax & 0x1f) /* a real cache level: cores per package */
				e->eax = (e->eax & 0x03ffffff) | ((ncpus - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			set_topology_leaf(e, apic_id, ncpus);
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xffu) | (ncpus - 1);
			break;
		}
	}
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned vcpu_index,
				  unsigned ncpus, const struct cpuid_mask *mask)
{
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);

	if (!c)
		return NULL;
	memcpy(c, supported, size);
	set_topology(c, vcpu_index, ncpus);
	for (unsigned i = 0; mask && i < mask->n; i++) {
		const struct cpuid_mask_bit *b = &mask->bits[i];
		struct kvm_cpuid_entry2 *e = cpuid_find(c, b->leaf, b->subleaf);

		if (e)
			*reg_of(e, b->reg) &= ~(1u << b->bit);
	}
	return c;
}
