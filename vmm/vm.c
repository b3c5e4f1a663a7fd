#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/console.h"
#include "core/log.h"
#include "devices/ctl_abi.h"
#include "devices/ged.h"
#include "devices/uart.h"
#include "vmm/acpi.h"
#include "vmm/boot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static int create_vm_fd(struct vm *vm)
{
	uint64_t ident = LAYOUT_KVM_IDENT_MAP;
	int ret;

	vm->fd = kvm_ioctl(vm->kvm->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return vm->fd;
	/* Intel needs these three pages for real-mode emulation; they sit in the MMIO hole. */
	ret = kvm_ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS);
	if (!ret && kvm_check_cap(vm->fd, KVM_CAP_SET_IDENTITY_MAP_ADDR))
		ret = kvm_ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	return ret;
}

/*
 * After the memory slots: a memory-slot change waits for an SRCU grace
 * period, and once the irqchip exists that wait costs 4-8 ms here, against
 * about 0.2 ms before it.
 */
static int create_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret = kvm_ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0);

	if (!ret)
		ret = kvm_ioctl(vm->fd, KVM_CREATE_PIT2, &pit);
	return ret;
}

static void dev_console_out(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;

	console_write(vm->console, buf, len);
}

static void dev_set_irq(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };

	kvm_ioctl(vm->fd, KVM_IRQ_LINE, &irq);
}

static void ctl_exit(void *opaque, int status)
{
	vm_guest_ended(opaque, VM_STOP_GUEST_EXIT, status);
}

static void ctl_log(void *opaque, const char *text, size_t len)
{
	struct vm *vm = opaque;
	uint8_t line[VMFORK_LOG_MAX + 1];

	/* One write per line, so lines from several vCPUs never interleave. */
	len = len < VMFORK_LOG_MAX ? len : VMFORK_LOG_MAX;
	memcpy(line, text, len);
	if (!len || line[len - 1] != '\n')
		line[len++] = '\n';
	console_write(vm->console, line, len);
}

static void ctl_report(void *opaque, uint64_t value)
{
	struct vm *vm = opaque;

	pthread_mutex_lock(&vm->lock);
	if (vm->nreports < VM_MAX_REPORTS)
		vm->reports[vm->nreports] = value;
	vm->nreports++;
	pthread_mutex_unlock(&vm->lock);
	pr_info("guest report %u: %#llx (%llu)", vm->nreports - 1, (unsigned long long)value,
		(unsigned long long)value);
}

/* A guest-requested fork runs on the vCPU thread that wrote the FORK register. */
static void ctl_fork_request(void *opaque, uint64_t count)
{
	struct vm *vm = opaque;

	if (vm->guest_ops)
		vm->guest_ops->fork(vm, vcpu_self(), count);
	else
		ctl_set_fork_result(&vm->ctl, -ENOSYS, 0);
}

static void ctl_mark_request(void *opaque, uint64_t counter_gpa)
{
	struct vm *vm = opaque;

	if (vm->guest_ops)
		vm->guest_ops->mark(vm, vcpu_self(), counter_gpa);
	else
		ctl_set_mark_result(&vm->ctl, -ENOSYS);
}

static void ctl_reset_request(void *opaque)
{
	struct vm *vm = opaque;

	if (vm->guest_ops)
		vm->guest_ops->reset(vm, vcpu_self());
	else
		pr_warn("VM %llu: the guest asked for a reset, but nothing here can reset it",
			(unsigned long long)vm->id);
}

static void ctl_fuzz_done(void *opaque)
{
	struct vm *vm = opaque;

	if (vm->guest_ops && vm->guest_ops->fuzz_done)
		vm->guest_ops->fuzz_done(vm, vcpu_self());
	else
		ctl_count_bad(&vm->ctl);
}

static void ctl_fuzz_crash(void *opaque, uint64_t value)
{
	struct vm *vm = opaque;

	if (vm->guest_ops && vm->guest_ops->fuzz_crash)
		vm->guest_ops->fuzz_crash(vm, vcpu_self(), value);
	else
		ctl_count_bad(&vm->ctl);
}

static void dev_reset_machine(void *opaque)
{
	vm_guest_ended(opaque, VM_STOP_RESET, 0);
}

static void dev_poweroff(void *opaque)
{
	vm_guest_ended(opaque, VM_STOP_POWEROFF, 0);
}

/* A device's ACPI events go through the VM's GED, which interrupts the guest. */
static void dev_acpi_event(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	int ged = device_index(&ged_device);

	if (ged >= 0 && vm->devs[ged])
		ged_raise(vm->devs[ged], events);
}

static uint64_t dev_vm_id(void *opaque)
{
	const struct vm *vm = opaque;

	return vm->id == VM_ID_NONE ? 0 : vm->id;
}

int vm_configure_device(struct vm *vm, unsigned index, const char *arg)
{
	const struct device_type *t = index < DEVICE_MAX ? device_table[index] : NULL;
	int ret;

	if (!t || !t->option || !t->configure || !arg)
		return -EINVAL;
	if (strlen(arg) >= DEVICE_ARG_MAX) {
		pr_err("--%s: the argument is longer than %d bytes", t->option, DEVICE_ARG_MAX - 1);
		return -ENAMETOOLONG;
	}
	if (vm->dev_on[index])
		return strcmp(vm->dev_arg[index], arg) ? -EBUSY : 0;
	ret = t->configure(vm->devs[index], arg);
	if (ret < 0)
		return ret;
	strcpy(vm->dev_arg[index], arg);
	vm->dev_on[index] = true;
	return 0;
}

int vm_rebind_device(struct vm *vm, unsigned index, const char *arg)
{
	const struct device_type *t = index < DEVICE_MAX ? device_table[index] : NULL;
	int ret;

	if (!t || !t->rebind || !arg || !vm->dev_on[index])
		return -EINVAL;
	if (strlen(arg) >= DEVICE_ARG_MAX) {
		pr_err("%s: the argument is longer than %d bytes", t->option, DEVICE_ARG_MAX - 1);
		return -ENAMETOOLONG;
	}
	ret = t->rebind(vm->devs[index], arg);
	if (ret < 0)
		return ret;
	/* The clone's snapshots and forks name its own backend, not its parent's. */
	strcpy(vm->dev_arg[index], arg);
	return 0;
}

const char *vm_device_arg(const struct vm *vm, unsigned index)
{
	return index < DEVICE_MAX && vm->dev_on[index] ? vm->dev_arg[index] : NULL;
}

int vm_devices_forked(struct vm *vm)
{
	int ret = 0;

	for (unsigned i = 0; !ret && device_table[i]; i++)
		if (device_table[i]->forked)
			ret = device_table[i]->forked(vm->devs[i]);
	return ret;
}

int vm_devices_attach(struct vm *vm)
{
	int ret = 0;

	for (unsigned i = 0; !ret && device_table[i]; i++)
		if (device_table[i]->attach)
			ret = device_table[i]->attach(vm->devs[i]);
	return ret;
}

/* Devices with threads of their own follow the vCPUs (core/device.h set_running). */
static void devices_set_running(struct vm *vm, bool running)
{
	for (unsigned i = 0; device_table[i]; i++)
		if (device_table[i]->set_running && vm->devs[i])
			device_table[i]->set_running(vm->devs[i], running);
}

static int configure_devices(struct vm *vm, const struct device_config *cfg)
{
	int ret = 0;

	for (unsigned i = 0; !ret && cfg && device_table[i]; i++)
		if (cfg->args[i])
			ret = vm_configure_device(vm, i, cfg->args[i]);
	return ret;
}

/* Every device of the table, then the VM's own control device. */
static int create_devices(struct vm *vm, const char *console)
{
	struct device_host host = {
		.set_irq = dev_set_irq, .console_out = dev_console_out,
		.reset_machine = dev_reset_machine, .poweroff = dev_poweroff,
		.acpi_event = dev_acpi_event,
		.vm_id = dev_vm_id, .mem = &vm->mem, .opaque = vm,
	};
	struct ctl_host ctl_host = {
		.exit = ctl_exit, .log = ctl_log, .report = ctl_report, .fork = ctl_fork_request,
		.mark = ctl_mark_request, .reset = ctl_reset_request, .fuzz_done = ctl_fuzz_done,
		.fuzz_crash = ctl_fuzz_crash, .opaque = vm,
	};
	int ret = vm_set_console(vm, console ? console : "stdio");

	for (unsigned i = 0; !ret && device_table[i]; i++)
		ret = device_table[i]->create(&vm->devs[i], &vm->bus, &host);
	if (ret < 0)
		return ret;
	ctl_init(&vm->ctl, &vm->mem, &ctl_host, vm->ncpus);
	return bus_register(&vm->bus, BUS_MMIO, VMFORK_CTL_BASE, VMFORK_CTL_SIZE, &ctl_bus_ops,
			    &vm->ctl);
}

static int check_config(const struct kvm_host *kvm, const struct vm_config *cfg)
{
	if (cfg->ncpus < 1 || cfg->ncpus > VM_MAX_CPUS || (int)cfg->ncpus > kvm->max_vcpus) {
		pr_err("%u vCPUs: this host allows 1 to %d", cfg->ncpus,
		       kvm->max_vcpus < VM_MAX_CPUS ? kvm->max_vcpus : VM_MAX_CPUS);
		return -EINVAL;
	}
	return 0;
}

static int create_vcpus(struct vm *vm, bool for_boot)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < vm->ncpus; i++)
		ret = vcpu_create(vm, i, for_boot, &vm->vcpus[i]);
	return ret;
}

static int vm_init(struct vm *vm, const struct vm_config *cfg)
{
	int ret = check_config(vm->kvm, cfg);

	if (!ret && cfg->cpuid_mask)
		ret = cpuid_mask_parse(cfg->cpuid_mask, &vm->cpuid_mask);
	if (!ret)
		ret = create_vm_fd(vm);
	if (!ret)
		ret = guest_mem_create(&vm->mem, cfg->mem_size, cfg->mem_path);
	if (!ret)
		ret = guest_mem_register(&vm->mem, vm->fd);
	if (!ret)
		ret = create_irqchip(vm);
	if (!ret)
		ret = create_devices(vm, cfg->console);
	if (!ret)
		ret = configure_devices(vm, &cfg->devices);
	if (!ret)
		ret = create_vcpus(vm, true);
	return ret;
}

static struct vm *vm_alloc(struct kvm_host *kvm, unsigned ncpus)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->kvm = kvm;
	vm->id = vm->parent_id = VM_ID_NONE;
	vm->fd = -1;
	vm->mem.fd = -1;
	vm->ncpus = ncpus;
	bus_init(&vm->bus);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->op_lock, NULL);
	pthread_cond_init(&vm->stopped, NULL);
	pthread_cond_init(&vm->parked, NULL);
	pthread_cond_init(&vm->resumed, NULL);
	return vm;
}

int vm_create(struct vm **out, struct kvm_host *kvm, const struct vm_config *cfg)
{
	struct vm *vm = vm_alloc(kvm, cfg->ncpus);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = vm_init(vm, cfg);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

static int shell_init(struct vm *vm, uint64_t mem_size, const struct cpuid_mask *mask,
		      const struct guest_mem *file)
{
	int ret = create_vm_fd(vm);

	if (mask)
		vm->cpuid_mask = *mask;
	if (!ret)
		ret = guest_mem_reserve(&vm->mem, mem_size);
	/* Mapped before the memory slots exist: then KVM has nothing to invalidate. */
	if (!ret && file)
		ret = guest_mem_premap(&vm->mem, file);
	if (!ret)
		ret = guest_mem_register(&vm->mem, vm->fd);
	if (!ret)
		ret = create_irqchip(vm);
	if (!ret)
		ret = create_devices(vm, "none");
	if (!ret)
		ret = create_vcpus(vm, false);
	return ret;
}

int vm_create_shell(struct vm **out, struct kvm_host *kvm, uint64_t mem_size, unsigned ncpus,
		    const struct cpuid_mask *mask, const struct guest_mem *file)
{
	struct vm *vm = vm_alloc(kvm, ncpus);
	int ret;

	if (!vm)
		return -ENOMEM;
	ret = shell_init(vm, mem_size, mask, file);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

static size_t console_rx(void *opaque, const uint8_t *buf, size_t len);
static void console_quit(void *opaque);

struct kvm_cpuid2 *vm_cpuid(const struct vm *vm)
{
	if (vm->cpuid_table)
		return cpuid_for_vcpu(vm->cpuid_table, 0, vm->ncpus, NULL);
	return cpuid_for_vcpu(vm->kvm->supported_cpuid, 0, vm->ncpus, &vm->cpuid_mask);
}

int vm_set_cpuid_table(struct vm *vm, const struct kvm_cpuid2 *table)
{
	size_t size = sizeof(*table) + table->nent * sizeof(table->entries[0]);
	struct kvm_cpuid2 *copy = malloc(size);
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, table, size);
	free(vm->cpuid_table);
	vm->cpuid_table = copy;
	for (unsigned i = 0; !ret && i < vm->ncpus; i++)
		ret = vcpu_set_cpuid(vm->vcpus[i]);
	return ret;
}

int vm_set_console(struct vm *vm, const char *spec)
{
	struct console *c;
	int ret = console_open(&c, spec);

	if (ret < 0)
		return ret;
	/* Once the VM's threads run, input must run too (a socket console accepts there). */
	if (vm->threads_started)
		ret = console_start_input(c, console_rx, console_quit, vm);
	if (ret < 0) {
		console_close(c);
		return ret;
	}
	console_close(vm->console);
	vm->console = c;
	snprintf(vm->console_spec, sizeof(vm->console_spec), "%s", spec);
	return 0;
}

static int load_initrd(struct vm *vm, const struct boot_image *kernel, const char *path,
		       uint64_t *addr, uint64_t *size)
{
	uint8_t *data;
	size_t len;
	int ret;

	*addr = *size = 0;
	if (!path)
		return 0;
	ret = boot_read_file(path, BOOT_INITRD_MAX, &data, &len);
	if (ret < 0)
		return ret;
	ret = boot_load_initrd(&vm->mem, kernel, data, len, addr);
	free(data);
	*size = len;
	return ret;
}

int vm_boot(struct vm *vm, const struct vm_config *cfg)
{
	struct boot_image kernel;
	uint64_t initrd_addr, initrd_size;
	uint8_t *image;
	size_t len;
	int ret;

	if (cfg->firmware)
		return vm_boot_firmware(vm, cfg);
	ret = boot_read_file(cfg->kernel, BOOT_KERNEL_MAX, &image, &len);
	if (ret < 0)
		return ret;
	ret = boot_load_kernel(&vm->mem, image, len, &kernel);
	free(image);
	if (ret < 0)
		return ret;
	ret = load_initrd(vm, &kernel, cfg->initrd, &initrd_addr, &initrd_size);
	if (!ret)
		ret = boot_write_params(&vm->mem, &kernel, cfg->cmdline ? cfg->cmdline : "",
					initrd_addr, initrd_size);
	if (!ret)
		ret = boot_write_tables(&vm->mem);
	if (!ret)
		ret = boot_write_mptable(&vm->mem, vm->ncpus);
	if (!ret)
		ret = acpi_write_tables(&vm->mem, vm->ncpus, vm->devs);
	if (!ret)
		ret = vm_devices_attach(vm);
	if (!ret)
		ret = vcpu_set_boot_regs(vm->vcpus[0], &kernel);
	return ret;
}

static size_t console_rx(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;

	for (unsigned i = 0; device_table[i]; i++)
		if (device_table[i]->receive && vm->devs[i])
			return device_table[i]->receive(vm->devs[i], buf, len);
	return len; /* no device takes console input: it is dropped */
}

static void console_quit(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_REQUESTED, 0);
}

static int start_threads(struct vm *vm, bool paused)
{
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	vm->run_state = paused ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	__atomic_store_n(&vm->pause_requested, paused, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->lock);
	if (!paused)
		devices_set_running(vm, true);
	for (unsigned i = 0; !ret && i < vm->ncpus; i++)
		ret = vcpu_start(vm->vcpus[i]);
	if (!ret)
		ret = console_start_input(vm->console, console_rx, console_quit, vm);
	vm->threads_started = true;
	if (ret < 0)
		vm_request_stop(vm, VM_STOP_ERROR, 1);
	return ret;
}

void vm_wait_parked(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	while (vm->nparked + vm->nexited < vm->ncpus)
		pthread_cond_wait(&vm->parked, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

int vm_start(struct vm *vm)
{
	return start_threads(vm, false);
}

int vm_start_paused(struct vm *vm)
{
	return start_threads(vm, true);
}

bool vm_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stop_reason, __ATOMIC_ACQUIRE) != VM_RUNNING;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->stop_reason == VM_RUNNING) {
		vm->exit_status = status;
		__atomic_store_n(&vm->stop_reason, reason, __ATOMIC_RELEASE);
	}
	pthread_cond_broadcast(&vm->stopped);
	pthread_cond_broadcast(&vm->resumed);
	/* Under the lock: vm_take_machine() may be swapping the run pages. */
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i])
			vcpu_kick(vm->vcpus[i]);
	pthread_mutex_unlock(&vm->lock);
	if (vm->guest_ops)
		vm->guest_ops->stopped(vm);
}

void vm_guest_ended(struct vm *vm, enum vm_stop_reason reason, int status)
{
	struct vcpu *self = vcpu_self();

	if (self && vm->guest_ops && vm->guest_ops->ending &&
	    vm->guest_ops->ending(vm, self, reason, status))
		return;
	vm_request_stop(vm, reason, status);
}

enum vm_stop_reason vm_stop_reason(struct vm *vm)
{
	enum vm_stop_reason reason;

	pthread_mutex_lock(&vm->lock);
	reason = vm->stop_reason;
	pthread_mutex_unlock(&vm->lock);
	return reason;
}

enum vm_stop_reason vm_wait(struct vm *vm)
{
	enum vm_stop_reason reason;

	pthread_mutex_lock(&vm->lock);
	while (vm->stop_reason == VM_RUNNING)
		pthread_cond_wait(&vm->stopped, &vm->lock);
	reason = vm->stop_reason;
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i])
			vcpu_join(vm->vcpus[i]);
	return reason;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (!vm_stopping(vm))
		vm_request_stop(vm, VM_STOP_REQUESTED, 0);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_destroy(vm->vcpus[i]);
	vm_wait_retired(vm);
	if (vm->console)
		console_close(vm->console);
	if (vm->guest_ops)
		vm->guest_ops->release(vm);
	free(vm->cpuid_table);
	for (unsigned i = 0; device_table[i]; i++)
		if (vm->devs[i])
			device_table[i]->destroy(vm->devs[i]);
	ctl_destroy(&vm->ctl);
	guest_mem_destroy(&vm->mem);
	vm_drop_firmware(vm);
	if (vm->fd >= 0)
		close(vm->fd);
	pthread_cond_destroy(&vm->stopped);
	pthread_cond_destroy(&vm->parked);
	pthread_cond_destroy(&vm->resumed);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->op_lock);
	free(vm);
}

int vm_exit_code(struct vm *vm)
{
	int status;

	pthread_mutex_lock(&vm->lock);
	status = vm->exit_status;
	pthread_mutex_unlock(&vm->lock);
	return status;
}

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
	switch (reason) {
	case VM_RUNNING: return "running";
	case VM_STOP_GUEST_EXIT: return "guest exit";
	case VM_STOP_RESET: return "guest reset";
	case VM_STOP_POWEROFF: return "guest power-off";
	case VM_STOP_TRIPLE_FAULT: return "triple fault";
	case VM_STOP_ERROR: return "error";
	case VM_STOP_REQUESTED: return "stopped by the host";
	}
	return "unknown";
}

void vm_vcpu_exited(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->nexited++;
	pthread_cond_broadcast(&vm->parked);
	pthread_mutex_unlock(&vm->lock);
}

/* Park every vCPU but self; the caller holds vm->lock. */
static int pause_locked(struct vm *vm, struct vcpu *self)
{
	unsigned want = vm->ncpus - (self ? 1 : 0);

	if (vm->run_state != VM_STATE_RUNNING || vm->stop_reason != VM_RUNNING)
		return -EINVAL;
	__atomic_store_n(&vm->pause_requested, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i] != self)
			vcpu_kick(vm->vcpus[i]);
	while (vm->nparked < want && vm->nexited == 0 && vm->stop_reason == VM_RUNNING)
		pthread_cond_wait(&vm->parked, &vm->lock);
	if (vm->stop_reason != VM_RUNNING || vm->nexited) {
		__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&vm->resumed);
		return -EINVAL;
	}
	vm->run_state = VM_STATE_PAUSED;
	return 0;
}

int vm_pause_locked(struct vm *vm, struct vcpu *self)
{
	int ret;

	pthread_mutex_lock(&vm->lock);
	ret = pause_locked(vm, self);
	pthread_mutex_unlock(&vm->lock);
	if (!ret)
		devices_set_running(vm, false);
	if (!ret && self)
		vcpu_complete_exit(self);
	return ret;
}

int vm_resume_locked(struct vm *vm)
{
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->run_state != VM_STATE_PAUSED || vm->stop_reason != VM_RUNNING) {
		ret = -EINVAL;
	} else {
		vm->run_state = VM_STATE_RUNNING;
		__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&vm->resumed);
	}
	if (!ret && vm->guest_ops)
		vm->guest_ops->resumed(vm);
	pthread_mutex_unlock(&vm->lock);
	if (!ret)
		devices_set_running(vm, true);
	return ret;
}

bool vm_op_lock_from_vcpu(struct vm *vm)
{
	while (pthread_mutex_trylock(&vm->op_lock)) {
		if (__atomic_load_n(&vm->pause_requested, __ATOMIC_ACQUIRE) || vm_stopping(vm))
			return false;
		sched_yield();
	}
	return true;
}

int vm_run_paused_from_vcpu(struct vm *vm, struct vcpu *self,
			    int (*act)(struct vm *vm, void *arg), void *arg)
{
	int ret;

	if (!self)
		return -EINVAL;
	if (!vm_op_lock_from_vcpu(vm))
		return -EBUSY;
	ret = vm_pause_locked(vm, self);
	if (!ret) {
		ret = act(vm, arg);
		vm_resume_locked(vm);
	}
	pthread_mutex_unlock(&vm->op_lock);
	return ret;
}

void vm_op_lock(struct vm *vm)
{
	pthread_mutex_lock(&vm->op_lock);
}

void vm_op_unlock(struct vm *vm)
{
	pthread_mutex_unlock(&vm->op_lock);
}

int vm_while_paused(struct vm *vm, int (*act)(struct vm *vm, void *arg), void *arg)
{
	bool was_running;
	int ret;

	pthread_mutex_lock(&vm->op_lock);
	was_running = vm_run_state(vm) == VM_STATE_RUNNING;
	ret = was_running ? vm_pause_locked(vm, NULL) : 0;
	if (!ret && !was_running && vm_run_state(vm) != VM_STATE_PAUSED)
		ret = -EINVAL;
	if (!ret)
		ret = act(vm, arg);
	if (was_running)
		vm_resume_locked(vm);
	pthread_mutex_unlock(&vm->op_lock);
	return ret;
}

int vm_pause(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->op_lock);
	ret = vm_pause_locked(vm, NULL);
	pthread_mutex_unlock(&vm->op_lock);
	return ret;
}

int vm_resume(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->op_lock);
	ret = vm_resume_locked(vm);
	pthread_mutex_unlock(&vm->op_lock);
	return ret;
}

enum vm_run_state vm_run_state(struct vm *vm)
{
	enum vm_run_state state;

	pthread_mutex_lock(&vm->lock);
	state = vm->stop_reason != VM_RUNNING ? VM_STATE_STOPPED : vm->run_state;
	pthread_mutex_unlock(&vm->lock);
	return state;
}

const char *vm_run_state_name(enum vm_run_state state)
{
	static const char *const names[] = { "created", "running", "paused", "stopped" };

	return state <= VM_STATE_STOPPED ? names[state] : "unknown";
}

uint64_t vm_private_bytes(struct vm *vm)
{
	struct mem_ranges r;
	uint64_t bytes = 0;

	/* A fork may freeze the RAM or move the VM onto another mapping meanwhile. */
	pthread_mutex_lock(&vm->op_lock);
	if (!vm->mem.frozen) {
		bytes = guest_mem_resident_bytes(&vm->mem);
	} else if (guest_mem_private_ranges(&vm->mem, &r) == 0) {
		bytes = r.pages * PAGE_SIZE;
		mem_ranges_free(&r);
	}
	pthread_mutex_unlock(&vm->op_lock);
	return bytes;
}

unsigned vm_reports(struct vm *vm, uint64_t *out, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&vm->lock);
	n = vm->nreports;
	for (unsigned i = 0; i < n && i < max && i < VM_MAX_REPORTS; i++)
		out[i] = vm->reports[i];
	pthread_mutex_unlock(&vm->lock);
	return n;
}
