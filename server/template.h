/*
 * A function's template for the serverless pool (`vm-fork serve`): the VM
 * every invocation is a clone of. Booted from the function's kernel and
 * initrd until its guest says it is ready, or restored from a snapshot;
 * either way registered in the vmm and paused.
 *
 * Ready (docs/guest-abi.md): the guest connects to the host's vsock port
 * ready_port (CID 2). On the host that is a connection to the Unix socket
 * PATH_<ready_port> beside the VM's vsock socket PATH, which this file
 * listens on while the template boots. The guest may write "ready\n"; the
 * connection is what counts. The guest is paused at once, so it should
 * connect only when everything its invocations need is loaded.
 */
#ifndef SERVER_TEMPLATE_H
#define SERVER_TEMPLATE_H

struct serve_function;
struct vm;
struct vmm;

/*
 * Boot (f->kernel) or restore (f->snapshot) f's template in vmm, with
 * console (a console spec, "none" for none) and f's vsock socket; return it
 * paused and referenced (vmm_put() it) in *out. Returns 0, -ETIMEDOUT (not
 * ready within f->ready_timeout_ms), -ECHILD (the guest stopped before it
 * was ready), or the errno of what failed, with a message; nothing is left
 * registered on failure.
 */
int template_start(struct vmm *vmm, const struct serve_function *f, const char *console,
		   struct vm **out);

#endif
