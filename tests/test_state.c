/*
 * KVM state capture and restore (state/state.h): distinctive values are
 * put into VM A's vCPU with raw ioctls, A is saved and loaded into VM B, and
 * B, saved again, must give the same state back.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "core/memory.h"
#include "state/state.h"
#include "tests/harness.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MSR_TSC            0x10
#define MSR_APIC_BASE      0x1b
#define MSR_SYSENTER_EIP   0x176
#define MSR_PAT            0x277
#define MSR_EFER           0xc0000080
#define MSR_STAR           0xc0000081
#define MSR_LSTAR          0xc0000082
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX        0xc0000103
#define MSR_KVM_WALL_CLOCK_NEW  0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define WALL_CLOCK_GPA          0x6000

#define APIC_TPR   0x80
#define APIC_SVR   0xf0
#define APIC_LVTT  0x320
#define APIC_TMICT 0x380
#define APIC_TMCCT 0x390
#define APIC_TDCR  0x3e0

#define XSAVE_MXCSR    24
#define XSAVE_XMM0     160
#define XSAVE_XSTATE_BV 512

#define CLOCK_START_NS 1000000000000ULL /* 1000 s */

struct pair {
	struct kvm_host kvm;
	struct vm *a, *b;
	struct msr_list msrs;
	int fa, fb;             /* vCPU 0 of A and of B */
};

/* Static, not on the stack: each state is ~20 KiB. */
static struct vcpu_state st_a, st_b, st_tmp;

static void pair_open(struct pair *p)
{
	struct vm_config cfg = { .mem_size = 16 * MiB, .ncpus = 1, .console = "none" };

	SKIP_WITHOUT_KVM();
	cr_assert_eq(kvm_host_open(&p->kvm, NULL), 0);
	cr_assert_eq(vm_create(&p->a, &p->kvm, &cfg), 0);
	cr_assert_eq(vm_create(&p->b, &p->kvm, &cfg), 0);
	cr_assert_eq(msr_list_init(&p->msrs, &p->kvm, NULL), 0);
	p->fa = p->a->vcpus[0]->fd;
	p->fb = p->b->vcpus[0]->fd;
}

static void pair_close(struct pair *p)
{
	vm_destroy(p->a);
	vm_destroy(p->b);
	kvm_host_close(&p->kvm);
}

static bool listed(const struct msr_list *l, uint32_t index)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->index[i] == index)
			return true;
	return false;
}

static void set_msr(int fd, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e = { .index = index, .data = value } };

	cr_assert_eq(ioctl(fd, KVM_SET_MSRS, &m), 1, "MSR %#x = %#llx", index,
		     (unsigned long long)value);
}

static uint64_t get_msr(int fd, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e = { .index = index } };

	cr_assert_eq(ioctl(fd, KVM_GET_MSRS, &m), 1, "MSR %#x read", index);
	return m.e.data;
}

static uint64_t msr_of(const struct vcpu_state *st, uint32_t index)
{
	const struct kvm_msr_entry *e = vcpu_state_msr(st, index);

	cr_assert_not_null(e, "MSR %#x saved", index);
	return e->data;
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, unsigned off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], sizeof(v));
	return v;
}

static void set_lapic_reg(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
	memcpy(&l->regs[off], &v, sizeof(v));
}

static void poke_regs(int fd)
{
	struct kvm_regs r;

	cr_assert_eq(ioctl(fd, KVM_GET_REGS, &r), 0);
	r.rax = 0x1111111111111111;
	r.rbx = 0x2222222222222222;
	r.rcx = 0x3333333333333333;
	r.rsi = 0xfeedfacecafebeef;
	r.r8 = 0x8888888888888888;
	r.r15 = 0xf0f0f0f0f0f0f0f0;
	r.rsp = 0x7ff000;
	r.rip = 0xffffffff81000123;
	r.rflags = 0x2 | 0x1 | 0x40 | 0x800; /* reserved bit, CF, ZF, OF */
	cr_assert_eq(ioctl(fd, KVM_SET_REGS, &r), 0);
}

/* 64-bit mode as Linux runs it: a valid CR0/CR4/EFER combination. */
static void poke_sregs(int fd)
{
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
				    .present = 1, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = 0x18, .type = 0x3,
				    .present = 1, .s = 1, .db = 1, .g = 1 };
	struct kvm_sregs s;

	cr_assert_eq(ioctl(fd, KVM_GET_SREGS, &s), 0);
	s.cs = code;
	s.ds = s.es = s.ss = data;
	s.fs = data;
	s.fs.base = 0x7f0000001000;
	s.gs = data;
	s.gs.base = 0xffff888000002000;
	s.gdt.base = 0x500;
	s.gdt.limit = 0x1f;
	s.idt.base = 0x1000;
	s.idt.limit = 0xfff;
	s.cr0 = 0x80050033; /* PG AM WP NE ET MP PE */
	s.cr3 = 0x9000;
	s.cr4 = 0x6a0;      /* OSXMMEXCPT OSFXSR PGE PAE */
	s.efer = 0xd01;     /* NXE LMA LME SCE */
	cr_assert_eq(ioctl(fd, KVM_SET_SREGS, &s), 0);
}

static void poke_xsave(int vm_fd, int fd)
{
	static uint32_t buf[STATE_XSAVE_MAX / 4];
	uint8_t *x = (uint8_t *)buf;
	uint32_t mxcsr = 0x7f80; /* round toward zero, all exceptions masked */
	uint64_t bv;

	if (kvm_check_cap(vm_fd, KVM_CAP_XSAVE2) >= STATE_XSAVE_MIN)
		cr_assert_eq(ioctl(fd, KVM_GET_XSAVE2, buf), 0);
	else
		cr_assert_eq(ioctl(fd, KVM_GET_XSAVE, buf), 0);
	for (int i = 0; i < 4 * 16; i++)
		x[XSAVE_XMM0 + i] = (uint8_t)(0xa0 + i);
	memcpy(x + XSAVE_MXCSR, &mxcsr, sizeof(mxcsr));
	memcpy(&bv, x + XSAVE_XSTATE_BV, sizeof(bv));
	bv |= 0x3; /* x87 and SSE state present */
	memcpy(x + XSAVE_XSTATE_BV, &bv, sizeof(bv));
	cr_assert_eq(ioctl(fd, KVM_SET_XSAVE, buf), 0);
}

static void poke_debugregs(int fd)
{
	struct kvm_debugregs d = {
		.db = { 0x1000, 0x2000, 0x3000, 0x4000 },
		.dr6 = 0xffff0ff1,        /* B0 and the bits that read as 1 */
		.dr7 = 0x00010455,        /* L0 L1 L2 L3, RW0=write */
	};

	cr_assert_eq(ioctl(fd, KVM_SET_DEBUGREGS, &d), 0);
}

static void poke_lapic(int fd)
{
	struct kvm_lapic_state l;

	cr_assert_eq(ioctl(fd, KVM_GET_LAPIC, &l), 0);
	set_lapic_reg(&l, APIC_SVR, 0x1ff);        /* software-enabled, spurious vector 0xff */
	set_lapic_reg(&l, APIC_TPR, 0x20);
	set_lapic_reg(&l, APIC_TDCR, 0xb);         /* divide by 1 */
	set_lapic_reg(&l, APIC_LVTT, 0x100ec);     /* masked, one-shot, vector 0xec */
	set_lapic_reg(&l, APIC_TMICT, 0x12345678);
	cr_assert_eq(ioctl(fd, KVM_SET_LAPIC, &l), 0);
}

/*
 * The TSC A's state must hold at least: what poke_msrs wrote, or where KVM
 * ties the guest TSC to the host's and drops the write (PVM-style nested
 * KVM, whose guests read the host TSC natively), what A read right after.
 */
static uint64_t tsc_floor;

static void poke_tsc(int fd)
{
	uint64_t now;

	set_msr(fd, MSR_TSC, 1ULL << 40);
	now = get_msr(fd, MSR_TSC);
	tsc_floor = 1ULL << 40;
	if (now < tsc_floor) {
		cr_log_info("KVM kept the host TSC (%#llx) over the write of 1<<40",
			    (unsigned long long)now);
		tsc_floor = now;
	}
}

static void poke_msrs(int fd, const struct msr_list *l)
{
	set_msr(fd, MSR_KERNEL_GS_BASE, 0xffff888012345000);
	set_msr(fd, MSR_LSTAR, 0xffffffff81a00040);
	set_msr(fd, MSR_STAR, 0x0023001000000000);
	set_msr(fd, MSR_SYSENTER_EIP, 0xffffffff81b00000);
	set_msr(fd, MSR_PAT, 0x0007010600070106);
	poke_tsc(fd);
	if (listed(l, MSR_TSC_AUX))
		set_msr(fd, MSR_TSC_AUX, 0x2a);
	/* kvmclock on: KVM_KVMCLOCK_CTRL then has work to do on restore. */
	if (listed(l, MSR_KVM_SYSTEM_TIME_NEW))
		set_msr(fd, MSR_KVM_SYSTEM_TIME_NEW, 0x5001);
}

static void poke_events_and_mp(int fd)
{
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_HALTED };

	cr_assert_eq(ioctl(fd, KVM_GET_VCPU_EVENTS, &ev), 0);
	ev.nmi.masked = 1;
	ev.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
	ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
	cr_assert_eq(ioctl(fd, KVM_SET_VCPU_EVENTS, &ev), 0);
	cr_assert_eq(ioctl(fd, KVM_SET_MP_STATE, &mp), 0);
}

/* The values poked into A are what A's saved state holds. */
static void check_poked(const struct vcpu_state *s, const struct msr_list *l)
{
	uint32_t mxcsr;

	cr_assert_eq(s->mp_state.mp_state, KVM_MP_STATE_HALTED);
	cr_assert_eq(s->regs.rsi, 0xfeedfacecafebeef);
	cr_assert_eq(s->regs.rip, 0xffffffff81000123);
	cr_assert_eq(s->regs.rflags, 0x843);
	cr_assert_eq(s->sregs.cr0, 0x80050033);
	cr_assert_eq(s->sregs.efer, 0xd01);
	cr_assert_eq(s->sregs.cs.l, 1);
	cr_assert_eq(s->sregs.gs.base, 0xffff888000002000);
	cr_assert_eq(((const uint8_t *)s->xsave)[XSAVE_XMM0 + 17], 0xb1, "XMM1 byte 1");
	memcpy(&mxcsr, (const uint8_t *)s->xsave + XSAVE_MXCSR, sizeof(mxcsr));
	cr_assert_eq(mxcsr, 0x7f80);
	cr_assert_eq(s->debugregs.db[2], 0x3000);
	cr_assert_eq(s->debugregs.dr7 & 0xffff, 0x0455);
	cr_assert_eq(lapic_reg(&s->lapic, APIC_TMICT), 0x12345678);
	cr_assert_eq(lapic_reg(&s->lapic, APIC_LVTT), 0x100ec);
	cr_assert_eq(s->events.nmi.masked, 1);
	cr_assert_eq(msr_of(s, MSR_KERNEL_GS_BASE), 0xffff888012345000);
	cr_assert_eq(msr_of(s, MSR_LSTAR), 0xffffffff81a00040);
	cr_assert_eq(msr_of(s, MSR_PAT), 0x0007010600070106);
	cr_assert_geq(msr_of(s, MSR_TSC), tsc_floor);
	if (listed(l, MSR_TSC_AUX))
		cr_assert_eq(msr_of(s, MSR_TSC_AUX), 0x2a);
	else
		cr_log_info("TSC_AUX is not among this host's MSRs: not checked");
	if (listed(l, MSR_KVM_SYSTEM_TIME_NEW))
		cr_assert_eq(msr_of(s, MSR_KVM_SYSTEM_TIME_NEW), 0x5001);
}

/* What must be identical after A -> B; the TSC and the timer's current count only advance. */
static void compare_vcpu(const struct vcpu_state *a, const struct vcpu_state *b)
{
	/* A second of TSC ticks; 10 GHz where KVM does not know the rate. */
	uint64_t second = a->tsc_khz ? (uint64_t)a->tsc_khz * 1000 : 10000000000ULL;

	cr_assert_eq(a->mp_state.mp_state, b->mp_state.mp_state);
	cr_assert_eq(memcmp(&a->regs, &b->regs, sizeof(a->regs)), 0, "regs");
	cr_assert_eq(memcmp(&a->sregs, &b->sregs, sizeof(a->sregs)), 0, "sregs");
	cr_assert_eq(a->xsave_size, b->xsave_size);
	cr_assert_eq(memcmp(a->xsave, b->xsave, a->xsave_size), 0, "xsave");
	cr_assert_eq(memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)), 0, "xcrs");
	cr_assert_eq(memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)), 0, "debugregs");
	cr_assert_eq(memcmp(a->lapic.regs, b->lapic.regs, APIC_TMCCT), 0, "LAPIC below TMCCT");
	cr_assert_eq(memcmp(a->lapic.regs + APIC_TMCCT + 16, b->lapic.regs + APIC_TMCCT + 16,
			    sizeof(a->lapic.regs) - APIC_TMCCT - 16), 0, "LAPIC above TMCCT");
	cr_assert_eq(memcmp(&a->events, &b->events, sizeof(a->events)), 0, "vcpu events");
	cr_assert_eq(a->tsc_khz, b->tsc_khz);
	cr_assert_eq(a->nmsrs, b->nmsrs);
	for (uint32_t i = 0; i < a->nmsrs; i++) {
		cr_assert_eq(a->msrs[i].index, b->msrs[i].index);
		if (a->msrs[i].index == MSR_TSC) {
			cr_assert_geq(b->msrs[i].data, a->msrs[i].data, "the TSC goes on");
			cr_assert_lt(b->msrs[i].data - a->msrs[i].data, second, "within a second");
			continue;
		}
		cr_assert_eq(a->msrs[i].data, b->msrs[i].data, "MSR %#x: %#llx vs %#llx",
			     a->msrs[i].index, (unsigned long long)a->msrs[i].data,
			     (unsigned long long)b->msrs[i].data);
	}
}

Test(state, msr_list_is_sane)
{
	struct pair p;

	pair_open(&p);
	cr_assert_gt(p.msrs.n, 10);
	cr_assert(listed(&p.msrs, MSR_TSC));
	cr_assert(listed(&p.msrs, MSR_LSTAR));
	cr_assert(listed(&p.msrs, MSR_KERNEL_GS_BASE));
	cr_assert(listed(&p.msrs, MSR_PAT), "PAT is tried even if KVM does not list it");
	cr_assert_not(listed(&p.msrs, MSR_EFER), "SREGS carries EFER");
	cr_assert_not(listed(&p.msrs, MSR_APIC_BASE), "SREGS carries the APIC base");
	for (uint32_t i = 0; i < p.msrs.n; i++) {
		cr_assert(p.msrs.index[i] < 0x800 || p.msrs.index[i] > 0x8ff, "no x2APIC MSRs");
		cr_assert(p.msrs.index[i] != STATE_MSR_TSC_DEADLINE || i == p.msrs.n - 1,
			  "TSC_DEADLINE last");
		for (uint32_t j = 0; j < i; j++)
			cr_assert_neq(p.msrs.index[i], p.msrs.index[j], "no duplicates");
	}
	cr_assert_not(msr_is_serialisable(0x80b));
	cr_assert(msr_is_serialisable(MSR_KVM_SYSTEM_TIME_NEW));
	pair_close(&p);
}

Test(state, vcpu_round_trip)
{
	struct pair p;

	pair_open(&p);
	poke_regs(p.fa);
	poke_sregs(p.fa);
	poke_xsave(p.a->fd, p.fa);
	poke_debugregs(p.fa);
	poke_lapic(p.fa);
	poke_msrs(p.fa, &p.msrs);
	poke_events_and_mp(p.fa);
	cr_assert_eq(vcpu_state_save(p.fa, p.a->fd, &p.msrs, &st_a), 0);
	check_poked(&st_a, &p.msrs);
	cr_assert_eq(vcpu_state_restore(p.fb, &st_a), 0);
	cr_assert_eq(vcpu_state_save(p.fb, p.b->fd, &p.msrs, &st_b), 0);
	compare_vcpu(&st_a, &st_b);
	pair_close(&p);
}

/* kvm.ignore_msrs=1 makes KVM read unknown MSRs as 0 instead of failing. */
static bool kvm_ignores_msrs(void)
{
	FILE *f = fopen("/sys/module/kvm/parameters/ignore_msrs", "r");
	int c = f ? fgetc(f) : 'N';

	if (f)
		fclose(f);
	return c == 'Y' || c == '1';
}

/* KVM_GET_MSRS stops at an MSR it cannot read: the save skips it and reads on. */
Test(state, save_skips_unreadable_msr)
{
	struct pair p;
	struct msr_list l = { .n = 3, .index = { MSR_TSC, 0x12345678, MSR_LSTAR } };

	pair_open(&p);
	set_msr(p.fa, MSR_LSTAR, 0xffffffff81a00080);
	cr_assert_eq(vcpu_state_save(p.fa, p.a->fd, &l, &st_a), 0);
	if (!kvm_ignores_msrs())
		cr_assert_eq(st_a.nmsrs, 2, "the unknown MSR is left out");
	cr_assert_eq(msr_of(&st_a, MSR_LSTAR), 0xffffffff81a00080, "the MSR after it is saved");
	cr_assert_null(vcpu_state_msr(&st_a, 0x12345678));
	pair_close(&p);
}

/* B still holds its fresh state: restoring it into A must undo the pokes. */
Test(state, vcpu_restore_overwrites_everything)
{
	struct pair p;

	pair_open(&p);
	cr_assert_eq(vcpu_state_save(p.fb, p.b->fd, &p.msrs, &st_b), 0);
	poke_regs(p.fa);
	poke_sregs(p.fa);
	poke_lapic(p.fa);
	poke_msrs(p.fa, &p.msrs);
	poke_events_and_mp(p.fa);
	cr_assert_eq(vcpu_state_restore(p.fa, &st_b), 0);
	cr_assert_eq(vcpu_state_save(p.fa, p.a->fd, &p.msrs, &st_a), 0);
	compare_vcpu(&st_b, &st_a);
	cr_assert_eq(st_a.mp_state.mp_state, KVM_MP_STATE_RUNNABLE);
	cr_assert_eq(msr_of(&st_a, MSR_KERNEL_GS_BASE), 0);
	pair_close(&p);
}

static void poke_vm(int vm_fd)
{
	struct kvm_pit_state2 pit;
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_irqchip pic = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
	struct kvm_clock_data clock = { .clock = CLOCK_START_NS };

	cr_assert_eq(ioctl(vm_fd, KVM_GET_PIT2, &pit), 0);
	pit.channels[0].count = 0x1234;
	pit.channels[0].mode = 2;
	pit.channels[0].rw_mode = 3;
	pit.channels[2].count = 0x4321;
	pit.channels[2].mode = 3;
	cr_assert_eq(ioctl(vm_fd, KVM_SET_PIT2, &pit), 0);
	cr_assert_eq(ioctl(vm_fd, KVM_GET_IRQCHIP, &chip), 0);
	/* Vector 0x35, level-triggered, masked, to APIC id 1. */
	chip.chip.ioapic.redirtbl[5].bits = 0x0100000000018035;
	chip.chip.ioapic.redirtbl[11].bits = 0x0000000000010042;
	cr_assert_eq(ioctl(vm_fd, KVM_SET_IRQCHIP, &chip), 0);
	cr_assert_eq(ioctl(vm_fd, KVM_GET_IRQCHIP, &pic), 0);
	pic.chip.pic.irq_base = 0x20;
	pic.chip.pic.imr = 0xfb;
	pic.chip.pic.elcr = 0x0c;
	cr_assert_eq(ioctl(vm_fd, KVM_SET_IRQCHIP, &pic), 0);
	cr_assert_eq(ioctl(vm_fd, KVM_SET_CLOCK, &clock), 0);
}

Test(state, vm_round_trip)
{
	struct pair p;
	struct vm_state a, b;

	pair_open(&p);
	poke_vm(p.a->fd);
	cr_assert_eq(vm_state_save(p.a->fd, &a), 0);
	cr_assert_eq(a.pit.channels[0].count, 0x1234);
	cr_assert_eq(a.irqchip[STATE_IOAPIC].chip.ioapic.redirtbl[5].bits, 0x0100000000018035);
	cr_assert_eq(a.irqchip[STATE_PIC_MASTER].chip.pic.imr, 0xfb);
	cr_assert_geq(a.clock.clock, CLOCK_START_NS);
	cr_assert_eq(vm_state_restore(p.b->fd, &a), 0);
	cr_assert_eq(vm_state_save(p.b->fd, &b), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(a.pit.channels[i].count, b.pit.channels[i].count, "PIT channel %d", i);
		cr_assert_eq(a.pit.channels[i].mode, b.pit.channels[i].mode);
		cr_assert_eq(a.pit.channels[i].rw_mode, b.pit.channels[i].rw_mode);
		cr_assert_eq(a.pit.channels[i].gate, b.pit.channels[i].gate);
	}
	cr_assert_eq(a.pit.flags, b.pit.flags);
	for (int i = 0; i < STATE_NR_IRQCHIPS; i++)
		cr_assert_eq(memcmp(&a.irqchip[i], &b.irqchip[i], sizeof(a.irqchip[i])), 0,
			     "irqchip %d", i);
	/* flags=0: B's clock goes on from A's value, whatever the host time. */
	cr_assert_geq(b.clock.clock, a.clock.clock);
	cr_assert_lt(b.clock.clock - a.clock.clock, 1000000000ULL, "within a second");
	pair_close(&p);
}

static uint32_t wall_clock_sec(struct vm *vm)
{
	const uint8_t *rec = gpa_ptr(&vm->mem, WALL_CLOCK_GPA, 12);
	uint32_t sec;

	cr_assert_not_null(rec);
	memcpy(&sec, rec + 4, sizeof(sec)); /* struct pvclock_wall_clock: version, sec, nsec */
	return sec;
}

/* VM first, then vCPU: KVM rewrites the guest's wall-clock record from the restored clock. */
Test(state, wall_clock_record_follows_restored_clock)
{
	struct pair p;
	struct vm_state vs;
	uint32_t boot_a, boot_b;

	pair_open(&p);
	if (!listed(&p.msrs, MSR_KVM_WALL_CLOCK_NEW))
		cr_skip_test("skipped: this host's KVM has no kvmclock MSRs");
	poke_vm(p.a->fd); /* guest uptime 1000 s */
	set_msr(p.fa, MSR_KVM_WALL_CLOCK_NEW, WALL_CLOCK_GPA);
	boot_a = wall_clock_sec(p.a);
	cr_assert_gt(boot_a, 0, "KVM wrote A's record");
	cr_assert_eq(vm_state_save(p.a->fd, &vs), 0);
	cr_assert_eq(vcpu_state_save(p.fa, p.a->fd, &p.msrs, &st_a), 0);
	cr_assert_eq(vm_state_restore(p.b->fd, &vs), 0);
	cr_assert_eq(vcpu_state_restore(p.fb, &st_a), 0);
	boot_b = wall_clock_sec(p.b);
	cr_assert(boot_b >= boot_a && boot_b <= boot_a + 2,
		  "B's boot time %u is A's %u, not host time minus a fresh clock", boot_b, boot_a);
	pair_close(&p);
}

Test(state, restore_rejects_bad_state)
{
	struct pair p;
	struct kvm_msr_entry *lstar;

	pair_open(&p);
	cr_assert_eq(vcpu_state_save(p.fa, p.a->fd, &p.msrs, &st_a), 0);

	st_tmp = st_a;
	st_tmp.nmsrs = STATE_MAX_MSRS + 1;
	cr_assert_eq(vcpu_state_restore(p.fb, &st_tmp), -EINVAL, "too many MSRs");

	st_tmp = st_a;
	st_tmp.xsave_size = STATE_XSAVE_MAX + 4;
	cr_assert_eq(vcpu_state_restore(p.fb, &st_tmp), -EINVAL, "XSAVE size");

	st_tmp = st_a;
	st_tmp.sregs.efer = 0x500; /* LMA and LME without paging: invalid */
	st_tmp.sregs.cr0 = 0x11;
	cr_assert_lt(vcpu_state_restore(p.fb, &st_tmp), 0, "EFER.LMA without CR0.PG");

	st_tmp = st_a;
	lstar = (struct kvm_msr_entry *)vcpu_state_msr(&st_tmp, MSR_LSTAR);
	cr_assert_not_null(lstar);
	lstar->data = 0x8000000000000000; /* not canonical */
	cr_assert_eq(vcpu_state_restore(p.fb, &st_tmp), -EINVAL, "KVM_SET_MSRS count checked");

	/* B is still usable: the good state loads. */
	cr_assert_eq(vcpu_state_restore(p.fb, &st_a), 0);
	pair_close(&p);
}

Test(state, vm_restore_rejects_bad_chip_id)
{
	struct pair p;
	struct vm_state s;

	pair_open(&p);
	cr_assert_eq(vm_state_save(p.a->fd, &s), 0);
	s.irqchip[STATE_IOAPIC].chip_id = 7;
	cr_assert_eq(vm_state_restore(p.b->fd, &s), -EINVAL);
	s.irqchip[STATE_IOAPIC].chip_id = STATE_IOAPIC;
	cr_assert_eq(vm_state_restore(p.b->fd, &s), 0);
	pair_close(&p);
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Not a benchmark, a sanity check that prints the cost of one vCPU's state. */
Test(state, save_restore_cost)
{
	enum { ROUNDS = 200 };
	struct pair p;
	struct vm_state vs;
	double t0, save_us, restore_us, vm_save_us, vm_restore_us;
	int bad = 0;

	pair_open(&p);
	t0 = now_us();
	for (int i = 0; i < ROUNDS; i++)
		bad |= vcpu_state_save(p.fa, p.a->fd, &p.msrs, &st_a);
	save_us = (now_us() - t0) / ROUNDS;
	t0 = now_us();
	for (int i = 0; i < ROUNDS; i++)
		bad |= vcpu_state_restore(p.fb, &st_a);
	restore_us = (now_us() - t0) / ROUNDS;
	t0 = now_us();
	for (int i = 0; i < ROUNDS; i++)
		bad |= vm_state_save(p.a->fd, &vs);
	vm_save_us = (now_us() - t0) / ROUNDS;
	t0 = now_us();
	for (int i = 0; i < ROUNDS; i++)
		bad |= vm_state_restore(p.b->fd, &vs);
	vm_restore_us = (now_us() - t0) / ROUNDS;
	cr_assert_eq(bad, 0);
	cr_log_info("one vCPU (%u MSRs, %u-byte XSAVE): save %.1f us, restore %.1f us; "
		    "VM devices: save %.1f us, restore %.1f us", st_a.nmsrs, st_a.xsave_size,
		    save_us, restore_us, vm_save_us, vm_restore_us);
	cr_assert_lt(save_us + restore_us, 5000.0, "a fork must not spend ms on vCPU state");
	pair_close(&p);
}
