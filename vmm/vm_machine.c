/*
 * A VM moving onto another KVM machine: how the first fork of a VM avoids
 * remapping its populated RAM (fork/fork.c). Everything the guest can
 * see was loaded into the new machine; the vCPU threads, devices, console
 * and identity stay with the struct vm and simply run on the new fds.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

struct retiree {
	struct vm *machine;  /* the old machine, in the shell's struct vm */
	int seal_fd;         /* the RAM file to seal once it is gone, or -1 */
};

#define SWAP(a, b) do { __typeof__(a) swap_tmp_ = (a); (a) = (b); (b) = swap_tmp_; } while (0)

static void *retire(void *arg)
{
	struct retiree *r = arg;

	vm_destroy(r->machine);
	if (r->seal_fd >= 0) {
		/* Nothing maps it shared and writable any more: the seal can take. */
		if (fcntl(r->seal_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) < 0)
			pr_debug("guest RAM: the base is sealed at the next fork instead");
		close(r->seal_fd);
	}
	free(r);
	return NULL;
}

void vm_take_machine(struct vm *vm, struct vm *shell)
{
	struct retiree *r = malloc(sizeof(*r));

	/* Under vm's lock, which vcpu_kick()'s callers hold: no kick lands on a page going away. */
	pthread_mutex_lock(&vm->lock);
	SWAP(vm->fd, shell->fd);
	SWAP(vm->mem, shell->mem);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		SWAP(vm->vcpus[i]->fd, shell->vcpus[i]->fd);
		SWAP(vm->vcpus[i]->run, shell->vcpus[i]->run);
		SWAP(vm->vcpus[i]->run_size, shell->vcpus[i]->run_size);
	}
	pthread_mutex_unlock(&vm->lock);
	guest_mem_adopt_base(&vm->mem);
	if (r) {
		r->machine = shell;
		r->seal_fd = vm->mem.is_memfd ? fcntl(vm->mem.fd, F_DUPFD_CLOEXEC, 0) : -1;
	}
	/* The teardown of a KVM VM takes milliseconds: not on the fork's path. */
	if (r && pthread_create(&vm->retire_thread, NULL, retire, r) == 0) {
		vm->retiring = true;
		return;
	}
	if (r)
		retire(r);
	else
		vm_destroy(shell);
}

void vm_wait_retired(struct vm *vm)
{
	if (!vm->retiring)
		return;
	pthread_join(vm->retire_thread, NULL);
	vm->retiring = false;
}
