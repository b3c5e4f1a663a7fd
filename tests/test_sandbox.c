/*
 * A clone worker's sandbox (fork/sandbox.h). Each case is a child process
 * that installs it, as a worker does once its clone is loaded, then makes one
 * syscall: a forbidden one kills that child alone, by SIGSYS, while the test
 * process (the VMM here) and the other children go on; what a running clone
 * needs still works. The procfork suite runs real workers inside it, and
 * procfork::workers_run_sandboxed checks that they are.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork/sandbox.h"
#include "tests/harness.h"

enum probe { P_EXEC, P_SOCKET, P_OPEN_WRITE, P_FORK, P_KILL, P_ALLOWED };

static void *thread_main(void *arg)
{
	return arg;
}

/* What a running clone does: threads, its fds, KVM, the pagemap, memory. */
static int allowed_work(int kvm_fd)
{
	int fd = memfd_create("sandbox-probe", MFD_CLOEXEC), pagemap;
	pthread_t t;
	void *back = NULL;
	char c = 'x';

	if (fd < 0 || write(fd, &c, 1) != 1 || pread(fd, &c, 1, 0) != 1)
		return 1;
	if (pthread_create(&t, NULL, thread_main, &c) || pthread_join(t, &back) || back != &c)
		return 2;
	if (kvm_fd >= 0 && ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return 3;
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap < 0)
		return 4;
	close(pagemap);
	if (!malloc(1 << 24))
		return 5;
	return 0;
}

static void run_probe(enum probe what, int kvm_fd)
{
	char *const argv[] = { "/bin/true", NULL };
	pid_t parent = getppid();

	if (sandbox_clone_worker() < 0)
		_exit(100);
	switch (what) {
	case P_EXEC: execv(argv[0], argv); break;
	case P_SOCKET: _exit(socket(AF_UNIX, SOCK_STREAM, 0) < 0 && errno == EPERM ? 102 : 101);
	case P_OPEN_WRITE: open("/tmp/vm-fork-sandbox-probe", O_WRONLY | O_CREAT, 0600); break;
	case P_FORK: fork(); break;
	case P_KILL: kill(parent, 0); break;
	case P_ALLOWED: _exit(allowed_work(kvm_fd));
	}
	_exit(101); /* the forbidden call returned */
}

/* The wait status of a child that installed the sandbox and then probed. */
static int probe(enum probe what, int kvm_fd)
{
	int status = -1;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0)
		run_probe(what, kvm_fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

Test(sandbox, forbidden_syscalls_kill_only_the_caller)
{
	static const struct {
		enum probe what;
		const char *name;
	} forbidden[] = {
		{ P_EXEC, "execve" }, { P_OPEN_WRITE, "open for writing" },
		{ P_FORK, "fork" }, { P_KILL, "kill of another process" },
	};
	int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), status;

	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		status = probe(forbidden[i].what, kvm_fd);

		cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
			  "%s in the sandbox: wait status %#x, wanted death by SIGSYS",
			  forbidden[i].name, status);
	}
	/* A new socket is refused, not fatal: a guest's vsock connection to the host fails alone. */
	status = probe(P_SOCKET, kvm_fd);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 102,
		  "socket() in the sandbox: wait status %#x, wanted EPERM", status);
	/* The caller alone: this process (its VMM) goes on, and so does a sibling. */
	status = probe(P_ALLOWED, kvm_fd);
	cr_expect_eq(status, 0, "what a clone needs failed in the sandbox: wait status %#x", status);
	cr_expect_eq(access("/tmp/vm-fork-sandbox-probe", F_OK), -1, "the open for writing made a file");
	if (kvm_fd >= 0)
		close(kvm_fd);
}
