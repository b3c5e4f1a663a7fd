/* Per-clone cgroups v2 for serve's limits (server/clone_cgroup.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "server/clone_cgroup.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP2_MAGIC 0x63677270
#define CPU_PERIOD_US 100000

static int write_file(const char *dir, const char *name, const char *fmt, ...)
{
	char path[CLONE_CGROUP_PATH_MAX + 32], text[64];
	va_list ap;
	int fd, n, ret = 0;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

/* The file's text (up to size - 1 bytes), or -errno. */
static int read_file(const char *dir, const char *name, char *out, size_t size)
{
	char path[CLONE_CGROUP_PATH_MAX + 32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, out, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	out[n] = '\0';
	return 0;
}

static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

static int fail(struct clone_cgroups *cg, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cg->why, sizeof(cg->why), fmt, ap);
	va_end(ap);
	return err;
}

/* The daemon's own cgroup v2 directory, from /proc/self/cgroup's "0::PATH". */
static int own_cgroup(char *out, size_t size)
{
	char text[4096], *line;

	if (read_file("/proc/self", "cgroup", text, sizeof(text)) < 0)
		return -ENOENT;
	line = strstr(text, "0::");
	if (line != text && (!line || line[-1] != '\n'))
		return -ENOENT;
	line[strcspn(line, "\n")] = '\0';
	snprintf(out, size, "%s%s", CGROUP_ROOT, strcmp(line + 3, "/") ? line + 3 : "");
	return 0;
}

/* Move this process into a leaf beside the clones, so that its cgroup may delegate. */
static int leave_for_leaf(const char *parent)
{
	char leaf[CLONE_CGROUP_PATH_MAX + 16];

	snprintf(leaf, sizeof(leaf), "%s/vm-fork-daemon", parent);
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return write_file(leaf, "cgroup.procs", "%d", (int)getpid());
}

static int enable_controllers(struct clone_cgroups *cg, const char *want)
{
	int ret = write_file(cg->parent, "cgroup.subtree_control", "%s", want);

	if (ret == -EBUSY && strcmp(cg->parent, CGROUP_ROOT)) {
		ret = leave_for_leaf(cg->parent);
		if (!ret)
			ret = write_file(cg->parent, "cgroup.subtree_control", "%s", want);
	}
	if (ret < 0)
		return fail(cg, ret, "cannot enable %s for the children of %s: %s", want, cg->parent,
			    ret == -EBUSY ? "it holds other processes (give the daemon a cgroup "
					    "of its own, e.g. systemd's Delegate=yes)" : strerror(-ret));
	return 0;
}

int clone_cgroups_open(struct clone_cgroups *cg, const char *parent_dir,
		       const struct clone_limits *limits)
{
	char offered[512], want[32] = "";
	struct statfs fs;

	memset(cg, 0, sizeof(*cg));
	cg->limits = *limits;
	if (statfs(CGROUP_ROOT, &fs) < 0 || fs.f_type != CGROUP2_MAGIC)
		return fail(cg, -ENOTSUP, "%s is not cgroup v2 (this host has cgroup v1, or none)",
			    CGROUP_ROOT);
	if (parent_dir)
		snprintf(cg->parent, sizeof(cg->parent), "%s", parent_dir);
	else if (own_cgroup(cg->parent, sizeof(cg->parent)) < 0)
		return fail(cg, -ENOTSUP, "this process is in no cgroup v2");
	if (read_file(cg->parent, "cgroup.controllers", offered, sizeof(offered)) < 0)
		return fail(cg, -ENOTSUP, "%s is not a cgroup v2 directory", cg->parent);
	if (limits->mem_max && !has_word(offered, "memory"))
		return fail(cg, -ENOTSUP, "%s does not offer the memory controller", cg->parent);
	if (limits->cpus > 0 && !has_word(offered, "cpu"))
		return fail(cg, -ENOTSUP, "%s does not offer the cpu controller", cg->parent);
	snprintf(want, sizeof(want), "%s%s%s", limits->mem_max ? "+memory" : "",
		 limits->mem_max && limits->cpus > 0 ? " " : "", limits->cpus > 0 ? "+cpu" : "");
	if (*want && enable_controllers(cg, want) < 0)
		return -ENOTSUP;
	cg->enforced = true;
	return 0;
}

static int set_limits(const struct clone_limits *l, const char *dir)
{
	int ret = 0;

	if (l->mem_max) {
		ret = write_file(dir, "memory.max", "%llu", (unsigned long long)l->mem_max);
		/* Swap would let a clone hold more than its limit. */
		if (!ret && write_file(dir, "memory.swap.max", "0") == -EACCES)
			ret = -EACCES;
		/* An out-of-memory clone ends whole, not a thread of it. */
		if (!ret)
			write_file(dir, "memory.oom.group", "1");
	}
	if (!ret && l->cpus > 0) {
		unsigned long long quota = (unsigned long long)(l->cpus * CPU_PERIOD_US);

		ret = write_file(dir, "cpu.max", "%llu %u", quota < 1000 ? 1000 : quota,
				 CPU_PERIOD_US);
	}
	return ret;
}

int clone_cgroup_enter(const struct clone_cgroups *cg, struct clone_cgroup *c, pid_t pid,
		       uint64_t clone_id)
{
	int ret;
	int n = snprintf(c->path, sizeof(c->path), "%s/vm-fork-%d-clone-%llu", cg->parent,
			 (int)getpid(), (unsigned long long)clone_id);

	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		c->path[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (mkdir(c->path, 0755) < 0) {
		c->path[0] = '\0';
		return -errno;
	}
	ret = set_limits(&cg->limits, c->path);
	if (!ret)
		ret = write_file(c->path, "cgroup.procs", "%d", (int)pid);
	if (ret < 0)
		clone_cgroup_remove(c);
	return ret;
}

static uint64_t read_number(const struct clone_cgroup *c, const char *name)
{
	char text[64];

	return read_file(c->path, name, text, sizeof(text)) < 0 ? 0 : strtoull(text, NULL, 10);
}

uint64_t clone_cgroup_peak(const struct clone_cgroup *c)
{
	uint64_t peak = read_number(c, "memory.peak");

	return peak ? peak : read_number(c, "memory.current");
}

bool clone_cgroup_oom_killed(const struct clone_cgroup *c)
{
	char text[512], *p;

	if (read_file(c->path, "memory.events", text, sizeof(text)) < 0)
		return false;
	p = strstr(text, "oom_kill ");
	return p && strtoull(p + 9, NULL, 10) > 0;
}

int clone_cgroup_remove(struct clone_cgroup *c)
{
	struct timespec ms1 = { 0, 1000000 };
	int ret = 0;

	if (!c->path[0])
		return 0;
	/* A process just reaped can keep its cgroup busy for a moment. */
	for (unsigned i = 0; i < 1000; i++) {
		ret = rmdir(c->path) < 0 ? -errno : 0;
		if (ret != -EBUSY)
			break;
		nanosleep(&ms1, NULL);
	}
	if (!ret)
		c->path[0] = '\0';
	return ret;
}
