/*
 * Linux guests for the tests: `vm-fork run` of a kernel with a busybox
 * initramfs whose init the test writes, its console in a file the test polls
 * for the lines the guest prints (never sleeping to reach a point).
 */
#ifndef TESTS_LINUX_HARNESS_H
#define TESTS_LINUX_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

struct linux_vm {
	pid_t pid;
	int status;            /* the VMM's wait status once it ended, -1 before */
	char console[64];      /* the parent's console file */
	char api[80];          /* its API socket */
	char initrd[80];       /* the initramfs made for it */
};

/* Debian's kernel (the newest /boot/vmlinuz-*, malloc'd), or NULL. */
char *linux_debian_kernel(void);
/* Our small kernel (build/linux/guest-bzImage, malloc'd); skips the test without it or KVM. */
char *linux_small_kernel(void);
/*
 * Start `vm-fork run` of kernel with an initramfs whose /init is init_script
 * (busybox sh; /bin has busybox's applets), cmdline appended to the usual
 * console options, and extra (NULL-terminated) further options. Clones'
 * consoles are PATH.clone-%u.log beside the API socket.
 */
void linux_start(struct linux_vm *vm, const char *kernel, const char *init_script,
		 const char *cmdline, const char *const *extra);
/* The same with files (NULL-terminated paths, e.g. build/linux/ programs) in the initramfs's /bin. */
void linux_start_files(struct linux_vm *vm, const char *kernel, const char *init_script,
		       const char *const *files, const char *cmdline, const char *const *extra);
/* The console of clone id ("" path for the parent: id 0). */
void linux_console_path(const struct linux_vm *vm, unsigned id, char *out, size_t len);
/* A file's text (malloc'd, "" when missing). */
char *linux_slurp(const char *path);
/* Poll path until done(text) holds, the VMM ends, or secs (scaled) pass; the text. */
char *linux_wait_for(struct linux_vm *vm, const char *path, bool (*done)(const char *),
		     unsigned secs);
/* Its exit status once it ends by itself, -1 if it still runs after secs. */
int linux_wait_exit(struct linux_vm *vm, unsigned secs);
/* vm-fork CMD --api ... --id 0 ARGS... (NULL-terminated); asserts success; output in out. */
void linux_cli(struct linux_vm *vm, const char *cmd, char *out, size_t len, ...);
/* Stop the VMM and remove its files. */
void linux_stop(struct linux_vm *vm);
/* An init running the example function (guest/linux/fn-words.c, in /bin) on vsock port 8080. */
extern const char linux_fn_init[];
/* The last 3000 characters of a console, for messages. */
const char *linux_tail(const char *out);
/* A client of a Unix socket (a VM's vsock PATH), reads timing out after the harness's wait. */
int linux_unix_connect(const char *path);
/* One line (without its '\n'), or "" on EOF, error or timeout. */
void linux_read_line(int fd, char *buf, size_t size);

#endif
