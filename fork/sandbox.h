/* A clone worker's sandbox, installed once its clone is loaded (fork/sandbox.c). */
#ifndef FORK_SANDBOX_H
#define FORK_SANDBOX_H

/*
 * No new privileges, and a seccomp filter on every thread of this process
 * that kills it on any syscall a running clone does not need. Irrevocable.
 * Returns 0 or a negative errno (then nothing was installed but maybe
 * no_new_privs).
 */
int sandbox_clone_worker(void);

#endif
