/*
 * vm-fork clone-worker (hidden): the process around one clone worker
 * (fork/worker.h, which does the work): its arguments, its socket, its fds
 * and its stop signals. A VMM starts it with the command line it was given
 * (tools/serve.c), its end of the socket at fd 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "fork/worker.h"
#include "tools/cli.h"
#include "tools/serve.h"

void cmd_clone_worker_usage(FILE *out)
{
	fprintf(out,
		"usage: vm-fork clone-worker --socket FD|PATH [-v] [-q]\n"
		"\n"
		"Internal: a VMM starts this to run one clone of a process fork in its own\n"
		"process (vm-fork fork --processes). It receives the clone over the socket\n"
		"and exits with the clone's status; %d when what it received was refused.\n",
		PROCMSG_EXIT_REFUSED);
}

static int parse_fd(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > 1 << 20)
		return -EINVAL;
	return (int)v;
}

/* An inherited fd must be a SEQPACKET socket; a path is connected to. */
static int open_socket(const char *arg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = parse_fd(arg), type = 0;
	socklen_t len = sizeof(type);

	if (fd >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
			return -ENOTSOCK;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
	if (strlen(arg) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, arg);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int parse_worker_args(int argc, char **argv, const char **socket_arg)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, level = LOG_WARN;

	while ((c = getopt_long(argc, argv, "+s:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': *socket_arg = optarg; break;
		case 'v': level = level < LOG_DEBUG ? level + 1 : LOG_DEBUG; break;
		case 'q': level = LOG_ERROR; break;
		case 'h': cmd_clone_worker_usage(stdout); exit(0);
		default: return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc || !*socket_arg) {
		cmd_clone_worker_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	log_set_level((enum log_level)level);
	return 0;
}

/* ---- Running ---- */

/*
 * SIGINT, SIGTERM, SIGHUP: a worker with no clone yet has nothing to save and
 * just ends; a running clone (and what it forked) stops with 128 + signal.
 */
static void *signal_thread(void *arg)
{
	struct clone_worker *w = arg;
	int sig = serve_wait_stop_signal();

	if (sig && !clone_worker_stop(w, 128 + sig))
		_exit(128 + sig);
	return NULL;
}

/* Nothing of the VMM that started us stays open here but the socket (and stdio). */
static void close_other_fds(int keep)
{
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	close_range((unsigned)keep + 1, ~0U, 0);
}

int cmd_clone_worker(int argc, char **argv)
{
	struct clone_worker w = { .sock = -1 };
	const char *socket_arg = NULL;
	pthread_t sig_thread;
	int ret = parse_worker_args(argc, argv, &socket_arg);

	if (ret)
		return ret;
	w.sock = open_socket(socket_arg);
	if (w.sock < 0) {
		fprintf(stderr, "vm-fork clone-worker: --socket %s: %s\n", socket_arg,
			strerror(-w.sock));
		return CLI_EXIT_USAGE;
	}
	close_other_fds(w.sock);
	serve_prepare_process(); /* stop signals go to the signal thread alone */
	if (pthread_create(&sig_thread, NULL, signal_thread, &w)) {
		close(w.sock);
		return CLI_EXIT_ERROR;
	}
	ret = clone_worker_serve(&w);
	serve_signal_thread_end(sig_thread);
	clone_worker_fini(&w);
	return ret;
}
