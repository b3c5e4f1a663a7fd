/*
 * A VM: everything one guest owns, in one struct, so that one process can
 * hold many (a parent and its clones, or many test VMs). Nothing here is
 * global except the vCPU kick signal's no-op handler.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/device.h"
#include "core/cpuid.h"
#include "core/kvm.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/ctl.h"

struct console;
struct fork_cache;
struct reset_point;
struct fuzz_session;
struct vcpu;

struct vm_config {
	uint64_t mem_size;          /* bytes, a multiple of 2 MiB */
	const char *mem_path;       /* NULL: guest RAM in an anonymous memfd */
	unsigned ncpus;             /* 1..VM_MAX_CPUS */
	const char *console;        /* console spec (core/console.h); NULL: "stdio" */
	bool console_input;         /* read the console's input into the UART */
	const char *cpuid_mask;     /* --cpuid-mask spec, or NULL */
	/* What to boot (vm_boot()). */
	const char *kernel;
	const char *initrd;         /* or NULL */
	const char *cmdline;        /* or NULL: empty */
	const char *firmware;       /* or NULL: a firmware image to boot instead (vmm/boot_firmware.c) */
	struct device_config devices; /* the optional devices turned on */
};

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_GUEST_EXIT,   /* the guest wrote the control device's EXIT register */
	VM_STOP_RESET,        /* i8042 reset pulse or KVM_SYSTEM_EVENT_RESET */
	VM_STOP_POWEROFF,     /* KVM_SYSTEM_EVENT_SHUTDOWN */
	VM_STOP_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN */
	VM_STOP_ERROR,        /* KVM refused to go on: emulation failure, failed entry, ... */
	VM_STOP_REQUESTED,    /* the host asked (signal, console escape, API) */
};

#define VM_MAX_REPORTS 256
#define VM_ID_NONE UINT64_MAX

enum vm_run_state { VM_STATE_CREATED, VM_STATE_RUNNING, VM_STATE_PAUSED, VM_STATE_STOPPED };

struct vm;
struct vmm;

/*
 * What the VM asks of the layers above it (fork/ installs them: the VM
 * cannot name the fork engine). Without them a guest's fork, mark and reset
 * requests are refused (-ENOSYS) and nothing hangs on the VM.
 */
struct vm_guest_ops {
	/* The guest's requests, each on the vCPU thread that made it (self). */
	void (*fork)(struct vm *vm, struct vcpu *self, uint64_t count);
	void (*mark)(struct vm *vm, struct vcpu *self, uint64_t counter_gpa);
	void (*reset)(struct vm *vm, struct vcpu *self);
	/* The VM runs again: what a fork cached of it is stale. */
	void (*resumed)(struct vm *vm);
	/* The VM stopped (its registry wakes whoever waits for that). */
	void (*stopped)(struct vm *vm);
	/* The VM is being destroyed: free what the layer above hung on it. */
	void (*release)(struct vm *vm);
	/*
	 * Fuzzing (server/fuzz.c), each optional: the guest's FUZZ_DONE and
	 * FUZZ_CRASH on its vCPU thread; and the guest is about to end the VM
	 * (reason, status as vm_request_stop()'s) on vCPU self: true when the
	 * layer above took it as the end of a run and the VM goes on.
	 */
	void (*fuzz_done)(struct vm *vm, struct vcpu *self);
	void (*fuzz_crash)(struct vm *vm, struct vcpu *self, uint64_t value);
	bool (*ending)(struct vm *vm, struct vcpu *self, enum vm_stop_reason reason, int status);
};

struct vm {
	struct kvm_host *kvm;
	struct vmm *vmm;              /* the registry it belongs to (fork/vmm.h), or NULL */
	const struct vm_guest_ops *guest_ops; /* or NULL */
	uint64_t id;                  /* clone id: 0 for the first booted VM; VM_ID_NONE until registered */
	uint64_t parent_id;           /* == id for a booted VM */
	char console_spec[256];
	unsigned refs;                /* vmm references; guarded by vmm->lock */
	bool threads_started;
	/* What a fork captured while paused, reused by further forks until it runs again. */
	struct fork_cache *fork_cache;
	struct reset_point *reset_point; /* fork/reset.h */
	struct fuzz_session *fuzz;    /* server/fuzz.h: vm-fork fuzz's session, or NULL */
	void *firmware;               /* a firmware image's mapping below 4 GiB, or NULL */
	size_t firmware_size;
	int fd;
	struct guest_mem mem;
	struct bus bus;
	unsigned ncpus;
	struct vcpu *vcpus[VM_MAX_CPUS];
	struct cpuid_mask cpuid_mask;
	/* The CPUID table its vCPUs are shaped from, when not this host's (a restored VM). */
	struct kvm_cpuid2 *cpuid_table;
	/* The machine it left for a shell's (vm_take_machine()), being torn down. */
	pthread_t retire_thread;
	bool retiring;

	struct console *console;
	void *devs[DEVICE_MAX];       /* device_table[i]'s instance (core/device.h) */
	bool dev_on[DEVICE_MAX];      /* an optional device was configured ... */
	char dev_arg[DEVICE_MAX][DEVICE_ARG_MAX]; /* ... with this argument */
	struct ctl_dev ctl;

	/*
	 * Serialises what the host does to the VM (pause, resume, fork, snapshot),
	 * held for the whole operation. A guest-requested fork only tries it.
	 */
	pthread_mutex_t op_lock;
	pthread_mutex_t lock;         /* guards what follows */
	pthread_cond_t stopped;       /* stop_reason changed */
	pthread_cond_t parked;        /* a vCPU parked or its thread ended */
	pthread_cond_t resumed;       /* pause_requested went false */
	enum vm_run_state run_state;
	bool pause_requested;         /* vCPU threads park until it clears */
	unsigned nparked, nexited;    /* vCPU threads parked / ended */
	enum vm_stop_reason stop_reason;
	int exit_status;
	unsigned nreports;
	uint64_t reports[VM_MAX_REPORTS];
};

/* Create a VM with its RAM, devices and vCPUs; nothing is loaded or running. */
int vm_create(struct vm **out, struct kvm_host *kvm, const struct vm_config *cfg);
/*
 * A warm shell: a VM with its vCPUs (CPUID set), devices and memory slots
 * over a reserved host range, ready to receive a fork's state. No console.
 * file, when not NULL, is premapped there (guest_mem_premap()).
 */
int vm_create_shell(struct vm **out, struct kvm_host *kvm, uint64_t mem_size, unsigned ncpus,
		    const struct cpuid_mask *mask, const struct guest_mem *file);
/*
 * Give the vCPUs CPUID shaped from table (copied) instead of this host's
 * supported set: a restored VM keeps the CPUID its guest saw. Only before
 * the vCPUs first ran.
 */
int vm_set_cpuid_table(struct vm *vm, const struct kvm_cpuid2 *table);
/* The CPUID vCPU 0 of this VM was given (malloc'd). */
struct kvm_cpuid2 *vm_cpuid(const struct vm *vm);
/* Open spec (core/console.h) as the VM's console, replacing the one it had. */
int vm_set_console(struct vm *vm, const char *spec);
/*
 * Turn on the optional device at table place index with its option's
 * argument. Again with the same argument: nothing. With another: -EBUSY.
 * Only before the VM runs (from its configuration, or a snapshot's).
 */
int vm_configure_device(struct vm *vm, unsigned index, const char *arg);
/*
 * Give the optional device at index, which is on, a new argument for this
 * VM's own backend (core/device.h rebind): a clone's, after
 * vm_devices_forked() and before vm_devices_attach(). The argument is kept
 * as the device's (vm_device_arg(), snapshots). -EINVAL: no such device, off,
 * or it cannot rebind; -ENAMETOOLONG; or the device's refusal.
 */
int vm_rebind_device(struct vm *vm, unsigned index, const char *arg);
/* The argument a device was turned on with, or NULL while it is off. */
const char *vm_device_arg(const struct vm *vm, unsigned index);
/* The VM has just become a clone: every device's forked() hook, in table order. */
int vm_devices_forked(struct vm *vm);
/* Every device's attach() hook: once per VM, before its vCPUs first run (vm_boot does it). */
int vm_devices_attach(struct vm *vm);
/* Load cfg->kernel (+ initrd, command line) and point the boot vCPU at it; or boot cfg->firmware. */
int vm_boot(struct vm *vm, const struct vm_config *cfg);
/* Map cfg->firmware below 4 GiB and its last 128 KiB at 0xE0000; the vCPU starts at its reset vector. */
int vm_boot_firmware(struct vm *vm, const struct vm_config *cfg);
void vm_drop_firmware(struct vm *vm);
/* A clone or restored VM of a firmware VM: what its firmware reads from fw_cfg, again. */
int vm_firmware_forked(struct vm *vm);
/* Start the vCPU threads (and console input). */
int vm_start(struct vm *vm);
/* The same, but the vCPUs stay out of the guest until vm_resume(). */
int vm_start_paused(struct vm *vm);
/* Wait until every vCPU thread of a paused VM has parked (or ended). */
void vm_wait_parked(struct vm *vm);
/*
 * vm takes shell's KVM machine (VM fd, vCPU fds and run pages, RAM mapping),
 * into which vm's state was loaded, and leaves its own in shell, which is
 * destroyed in the background; then the RAM file, which only that old
 * machine still mapped shared, is sealed. Both paused with every vCPU parked,
 * of the same shape; shell's RAM is vm's file, premapped (it becomes vm's
 * frozen base). vm_wait_retired() waits for the teardown to end.
 */
void vm_take_machine(struct vm *vm, struct vm *shell);
void vm_wait_retired(struct vm *vm);
/* Wait until the VM stops and its vCPU threads have ended; returns the reason. */
enum vm_stop_reason vm_wait(struct vm *vm);
/* Why it stopped (VM_RUNNING while it has not). */
enum vm_stop_reason vm_stop_reason(struct vm *vm);
/* Ask the VM to stop; the first reason given wins. Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);
/*
 * The guest ends the VM (exit, reset, poweroff, triple fault, a failure KVM
 * cannot go on from), on its vCPU thread: the guest ops' ending() may take
 * it (a fuzzer's crash); otherwise vm_request_stop().
 */
void vm_guest_ended(struct vm *vm, enum vm_stop_reason reason, int status);
bool vm_stopping(struct vm *vm);
void vm_destroy(struct vm *vm);

/*
 * Pause every vCPU at a consistent point (pending I/O completed) and keep it
 * out of the guest until vm_resume(). Returns 0, or -EINVAL when the VM is
 * not running. Safe from any thread except the VM's own vCPU threads.
 */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/*
 * Run act with the VM paused: pause it if it runs (and resume it after), or
 * use it as it is if paused. -EINVAL for a VM that is neither. op_lock is
 * held throughout. Returns what act returned.
 */
int vm_while_paused(struct vm *vm, int (*act)(struct vm *vm, void *arg), void *arg);
/*
 * The same with op_lock already held by the caller. self: the calling vCPU
 * (a guest-requested fork runs on it), which counts as parked and has its
 * exit completed; NULL from any other thread.
 */
int vm_pause_locked(struct vm *vm, struct vcpu *self);
/*
 * op_lock for a guest request on one of the VM's own vCPU threads (a fork, a
 * reset). A host operation that is pausing this VM waits for this very vCPU
 * to park, so the vCPU must not block then: false (the guest gets -EBUSY and
 * may retry). Any other holder is about to let go: wait for it.
 */
bool vm_op_lock_from_vcpu(struct vm *vm);
/* op_lock, for a host operation made of several steps (a fork): held for all of it. */
void vm_op_lock(struct vm *vm);
void vm_op_unlock(struct vm *vm);
int vm_resume_locked(struct vm *vm);
/*
 * A guest's request, on its vCPU thread self: op_lock (-EBUSY when a host
 * operation is pausing the VM), every other vCPU paused, act run, the VM
 * resumed. Fork and reset both go through it. Returns act's result, or
 * -EINVAL (no self), -EBUSY, or the pause's error when act did not run.
 */
int vm_run_paused_from_vcpu(struct vm *vm, struct vcpu *self,
			    int (*act)(struct vm *vm, void *arg), void *arg);
/* Called by a vCPU thread as it ends. */
void vm_vcpu_exited(struct vm *vm);
enum vm_run_state vm_run_state(struct vm *vm);
const char *vm_run_state_name(enum vm_run_state state);

/*
 * Host memory this VM has of its own: the pages it (or the VMM for it) wrote
 * since its base was frozen; for a VM that never forked, the RAM it touched.
 * Takes op_lock: not from a thread that holds it.
 */
uint64_t vm_private_bytes(struct vm *vm);

/* The process exit status vm-fork uses for a stopped VM (see README). */
int vm_exit_code(struct vm *vm);
const char *vm_stop_reason_name(enum vm_stop_reason reason);
/* Copy up to max report values; returns how many the guest reported. */
unsigned vm_reports(struct vm *vm, uint64_t *out, unsigned max);

#endif
