/*
 * A clone's own backends (core/device.h rebind), without KVM: virtio-vsock
 * turned on with the parent's argument, forked() as clone 5, then rebound
 * to a fork request's argument: attach() listens on the new path with the
 * clone's id in it (never on the old one), the CID follows the new base,
 * and bad arguments or a rebind at the wrong time are refused. With KVM, a
 * clone in a worker process gets its path through the job. The API's side
 * is in tests/test_api.c (fork_gives_clones_their_own_vsock).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/layout.h"
#include "core/memory.h"
#include "devices/virtio_vsock.h"
#include "fork/procfork.h"
#include "tests/fork_harness.h"
#include "tests/harness.h"
#include "tests/procfork_harness.h"

#define CONFIG 0x100 /* the device's config space: guest_cid, le64 */

static struct {
	struct guest_mem mem;
	struct bus bus;
	struct device_host host;
	void *dev;
	uint64_t id;
	char old_dir[64], new_dir[64];
} env;

static uint64_t vm_id(void *opaque)
{
	return *(uint64_t *)opaque;
}

static void no_irq(void *opaque, unsigned gsi, int level)
{
}

static void setup(void)
{
	memset(&env, 0, sizeof(env));
	snprintf(env.old_dir, sizeof(env.old_dir), "/tmp/vmf-rebind-a-XXXXXX");
	snprintf(env.new_dir, sizeof(env.new_dir), "/tmp/vmf-rebind-b-XXXXXX");
	cr_assert(mkdtemp(env.old_dir) && mkdtemp(env.new_dir));
	cr_assert_eq(guest_mem_create(&env.mem, 16 * MiB, NULL), 0);
	bus_init(&env.bus);
	env.host = (struct device_host){ .set_irq = no_irq, .vm_id = vm_id, .mem = &env.mem,
					 .opaque = &env.id };
	cr_assert_eq(virtio_vsock_device.create(&env.dev, &env.bus, &env.host), 0);
}

static void teardown(void)
{
	char cmd[160];

	virtio_vsock_device.destroy(env.dev);
	guest_mem_destroy(&env.mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", env.old_dir, env.new_dir);
	cr_expect_eq(system(cmd), 0);
}

static uint32_t guest_cid(void)
{
	uint64_t at = LAYOUT_VIRTIO_MMIO + VIRTIO_VSOCK_SLOT * VIRTIO_MMIO_SLOT_SIZE + CONFIG;
	uint32_t v = 0;

	cr_assert(bus_access(&env.bus, BUS_MMIO, at, (uint8_t *)&v, 4, false));
	return v;
}

static bool is_socket(const char *dir, const char *name)
{
	char path[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The parent's argument, then clone 5's identity: what vm_become_clone() does before rebind. */
static void become_clone_5(void)
{
	char arg[128];

	snprintf(arg, sizeof(arg), "%s/v%%u.sock,cid=10", env.old_dir);
	cr_assert_eq(virtio_vsock_device.configure(env.dev, arg), 0);
	env.id = 5;
	cr_assert_eq(virtio_vsock_device.forked(env.dev), 0);
	cr_assert_eq(guest_cid(), 15, "the parent's base 10 + clone id 5");
}

Test(fork_devices, vsock_rebind_listens_on_the_clone_s_own_path, .init = setup,
     .fini = teardown)
{
	char arg[128], path[160];

	become_clone_5();
	snprintf(arg, sizeof(arg), "%s/x%%u.sock,cid=100", env.new_dir);
	cr_assert_eq(virtio_vsock_device.rebind(env.dev, arg), 0);
	cr_expect_eq(guest_cid(), 105, "the CID rule, from the new base");
	cr_assert_eq(virtio_vsock_device.attach(env.dev), 0);
	snprintf(path, sizeof(path), "%s/x5.sock", env.new_dir);
	cr_expect_str_eq(virtio_vsock_path(env.dev), path);
	cr_expect(is_socket(env.new_dir, "x5.sock"), "nothing listens at %s", path);
	cr_expect(!is_socket(env.old_dir, "v5.sock"), "the parent's template was used");
	cr_expect_eq(virtio_vsock_device.rebind(env.dev, arg), -EINVAL, "rebound while listening");
}

Test(fork_devices, vsock_rebind_without_a_cid_and_without_percent_u, .init = setup,
     .fini = teardown)
{
	char arg[128];

	become_clone_5();
	snprintf(arg, sizeof(arg), "%s/plain.sock", env.new_dir);
	cr_assert_eq(virtio_vsock_device.rebind(env.dev, arg), 0);
	cr_expect_eq(guest_cid(), VIRTIO_VSOCK_DEFAULT_CID + 5, "the default base, as configure()");
	cr_assert_eq(virtio_vsock_device.attach(env.dev), 0);
	cr_expect(is_socket(env.new_dir, "plain.sock.clone-5"), "PATH.clone-k without %%u");
}

Test(fork_devices, vsock_rebind_refuses_what_configure_refuses, .init = setup,
     .fini = teardown)
{
	const char *bad[] = { "", ",cid=5", "/tmp/x,cid=2", "/tmp/x,cid=4294967295", "/tmp/x,cid=5z",
			      "/tmp/0123456789012345678901234567890123456789012345678901234567890123"
			      "4567890123456789012345678901234567890" };

	cr_expect_eq(virtio_vsock_device.rebind(env.dev, "/tmp/x%u.sock"), -EINVAL,
		     "a device that is off has nothing to rebind");
	become_clone_5();
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_lt(virtio_vsock_device.rebind(env.dev, bad[i]), 0, "'%s' taken", bad[i]);
	cr_expect_eq(guest_cid(), 15, "a refused argument changes nothing");
	cr_assert_eq(virtio_vsock_device.attach(env.dev), 0);
	cr_expect(is_socket(env.old_dir, "v5.sock"), "the parent's template still holds");
}

/*
 * With KVM: a wait_fork VM with --vsock, forked into a worker process
 * (fork/procfork.h) with its own path: the job carries the argument, and the
 * worker's clone listens there before it answers.
 */
static void boot_with_vsock(struct vmm *vmm, struct vm **out, const char *vsock)
{
	char kernel[4096];
	struct vm_config cfg = { .mem_size = 64 * MiB, .ncpus = 1, .console = "none",
				 .kernel = kernel, .cmdline = "timeout_ms=60000" };
	struct vm *vm;

	snprintf(kernel, sizeof(kernel), "%s", harness_build_path("guest/wait_fork.elf"));
	cfg.devices.args[device_by_option("vsock")] = vsock;
	cr_assert_eq(vmm_init(vmm, NULL), 0);
	cr_assert_eq(vm_create(&vm, &vmm->kvm, &cfg), 0);
	cr_assert_eq(vm_boot(vm, &cfg), 0);
	vm->id = vm->parent_id = vmm_alloc_ids(vmm, 1);
	cr_assert_eq(vmm_add(vmm, vm), 0);
	cr_assert_eq(vm_start(vm), 0);
	cr_assert(fenv_wait_reports(vm, 1, 30), "the guest never got ready");
	*out = vm;
}

Test(fork_devices, process_clone_listens_on_its_own_path, .fini = teardown, .timeout = 180)
{
	struct device_config devices = { { 0 } };
	char old_arg[128], new_arg[128], name[32];
	struct proc_pool *cold;
	struct proc_clone c;
	struct vmm vmm;
	struct vm *root;

	SKIP_WITHOUT_KVM(); /* before setup()'s folders: a skipped test runs no .fini */
	setup();
	snprintf(old_arg, sizeof(old_arg), "%s/v%%u.sock", env.old_dir);
	snprintf(new_arg, sizeof(new_arg), "%s/x%%u.sock", env.new_dir);
	boot_with_vsock(&vmm, &root, old_arg);
	devices.args[device_by_option("vsock")] = new_arg;
	cr_assert_eq(proc_pool_create(&cold, pfh_worker_cmd(), root, 0), 0);
	cr_assert_eq(vm_fork_to_pool_devices(cold, root, 1, &devices, &c, NULL), 0);
	snprintf(name, sizeof(name), "x%llu.sock", (unsigned long long)c.id);
	cr_expect(is_socket(env.new_dir, name), "the worker's clone is not at %s", name);
	snprintf(name, sizeof(name), "v%llu.sock", (unsigned long long)c.id);
	cr_expect(!is_socket(env.old_dir, name), "the worker's clone took the parent's template");
	cr_expect_eq(pfh_wait(c.pid, 60), 0x40 | (int)c.id, "the clone's own exit");
	proc_pool_destroy(cold);
	vmm_destroy(&vmm);
}
