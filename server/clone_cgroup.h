/*
 * Per-clone cgroups (cgroup v2) for `vm-fork serve`'s limits: each clone
 * runs in a process of its own (fork/procfork.h), placed in a cgroup of its
 * own with memory.max and cpu.max before its clone runs. The clone maps the
 * template's RAM privately, so the pages charged to its cgroup are the ones
 * it writes (and its process's own), not the shared base, which was charged
 * where the template ran.
 *
 * The clones' cgroups are made in the daemon's cgroup. cgroup v2 lets a
 * cgroup hand controllers to its children only while it holds no process
 * itself (the root excepted), so a daemon that shares its cgroup moves
 * itself into a leaf "vm-fork-daemon" beside the clones' first.
 */
#ifndef SERVER_CLONE_CGROUP_H
#define SERVER_CLONE_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CLONE_CGROUP_PATH_MAX 512

struct clone_limits {
	uint64_t mem_max;          /* memory.max in bytes, 0: none */
	double cpus;               /* cpu.max as CPUs, 0: none */
};

struct clone_cgroups {
	char parent[CLONE_CGROUP_PATH_MAX]; /* where each clone's cgroup is made */
	struct clone_limits limits;
	bool enforced;
	char why[256];             /* when not enforced: the reason */
};

/*
 * Prepare parent_dir (NULL: the daemon's own cgroup) for clones with limits:
 * cgroup v2, the controllers the limits need enabled for its children. 0, or
 * a negative errno with the reason in cg->why (the limits cannot be enforced).
 */
int clone_cgroups_open(struct clone_cgroups *cg, const char *parent_dir,
		       const struct clone_limits *limits);

/* One clone's cgroup: its path, made by clone_cgroup_enter(). */
struct clone_cgroup {
	char path[CLONE_CGROUP_PATH_MAX];
};

/* Make clone_id's cgroup with the limits and move pid into it. 0 or -errno. */
int clone_cgroup_enter(const struct clone_cgroups *cg, struct clone_cgroup *c, pid_t pid,
		       uint64_t clone_id);
/* The most memory the cgroup held (memory.peak, else memory.current); 0 if unknown. */
uint64_t clone_cgroup_peak(const struct clone_cgroup *c);
/* Whether the kernel's OOM killer ended a process of the cgroup (memory.events oom_kill). */
bool clone_cgroup_oom_killed(const struct clone_cgroup *c);
/* Remove the cgroup once its processes are gone (reaped). 0 or -errno. */
int clone_cgroup_remove(struct clone_cgroup *c);

#endif
