#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "core/log.h"
#include "fork/procclones.h"
#include "fork/procfork.h"

struct proc_clone_table {
	pthread_mutex_t lock;
	unsigned refs;
	unsigned n, cap;
	struct proc_clone_record *r;
};

struct waiter {
	struct proc_clone_table *t;
	unsigned index;
};

int proc_clones_create(struct proc_clone_table **out)
{
	struct proc_clone_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->refs = 1;
	*out = t;
	return 0;
}

void proc_clones_put(struct proc_clone_table *t)
{
	bool last;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	last = --t->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->r);
	free(t);
}

static int status_of(const siginfo_t *info)
{
	return info->si_code == CLD_EXITED ? info->si_status : 128 + info->si_status;
}

/* Wait without reaping, mark the clone ended, then reap: its pid is never reused while listed as running. */
static void *wait_clone(void *arg)
{
	struct waiter *w = arg;
	struct proc_clone_table *t = w->t;
	siginfo_t info = { 0 };
	uint64_t id;
	int status;
	pid_t pid;

	pthread_mutex_lock(&t->lock);
	pid = t->r[w->index].pid;
	id = t->r[w->index].id;
	pthread_mutex_unlock(&t->lock);
	while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	status = info.si_pid ? status_of(&info) : -1;
	pthread_mutex_lock(&t->lock);
	t->r[w->index].running = false;
	t->r[w->index].status = status;
	pthread_mutex_unlock(&t->lock);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	pr_info("clone %llu (process %d) ended with status %d", (unsigned long long)id, (int)pid,
		status);
	free(w);
	proc_clones_put(t);
	return NULL;
}

static int append_locked(struct proc_clone_table *t, const struct proc_clone *c, uint64_t parent_id)
{
	if (t->n == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;
		void *r = realloc(t->r, cap * sizeof(*t->r));

		if (!r)
			return -ENOMEM;
		t->r = r;
		t->cap = cap;
	}
	t->r[t->n] = (struct proc_clone_record){ .id = c->id, .parent_id = parent_id, .pid = c->pid,
						 .running = true };
	return (int)t->n++;
}

int proc_clones_track(struct proc_clone_table *t, const struct proc_clone *clone,
		      uint64_t parent_id)
{
	struct waiter *w = malloc(sizeof(*w));
	pthread_attr_t attr;
	pthread_t thread;
	int ret;

	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	ret = append_locked(t, clone, parent_id);
	if (ret >= 0)
		t->refs++; /* the waiter's */
	pthread_mutex_unlock(&t->lock);
	if (ret < 0) {
		free(w);
		return ret;
	}
	*w = (struct waiter){ .t = t, .index = (unsigned)ret };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	ret = -pthread_create(&thread, &attr, wait_clone, w);
	pthread_attr_destroy(&attr);
	if (ret < 0) {
		free(w);
		proc_clones_put(t);
	}
	return ret;
}

unsigned proc_clones_list(struct proc_clone_table *t, struct proc_clone_record *out,
			  unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&t->lock);
	n = t->n < max ? t->n : max;
	for (unsigned i = 0; i < n; i++)
		out[i] = t->r[i];
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned proc_clones_running(struct proc_clone_table *t)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->n; i++)
		n += t->r[i].running;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static struct proc_clone_record *find_locked(struct proc_clone_table *t, uint64_t id)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->r[i].id == id)
			return &t->r[i];
	return NULL;
}

bool proc_clones_get(struct proc_clone_table *t, uint64_t id, struct proc_clone_record *out)
{
	struct proc_clone_record *r;

	pthread_mutex_lock(&t->lock);
	r = find_locked(t, id);
	if (r)
		*out = *r;
	pthread_mutex_unlock(&t->lock);
	return r != NULL;
}

int proc_clones_signal(struct proc_clone_table *t, uint64_t id, int sig)
{
	struct proc_clone_record *r;
	int ret;

	pthread_mutex_lock(&t->lock);
	r = find_locked(t, id);
	ret = !r ? -ENOENT : !r->running ? -ESRCH : kill(r->pid, sig) < 0 ? -errno : 0;
	pthread_mutex_unlock(&t->lock);
	return ret;
}
