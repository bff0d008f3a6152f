/* Process attributes TypeScript decided on: scheduler (sched_setattr), I/O priority
 * (ioprio_set), execution domain (personality), CPU affinity (exec's execCPUAffinity) and the
 * AppArmor profile for the next execve. Each is a plain syscall or file write, in the order
 * runc does them (docs/boundary.md). */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOPRIO_WHO_PROCESS 1

/* struct sched_attr, first version (48 bytes): glibc 2.36 has no wrapper. */
struct tsrun_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

/* Scheduler, I/O priority, personality: before the user switch (a real-time policy needs
 * CAP_SYS_NICE), as runc's init does them before finalizing the namespace. */
void process_attrs(const struct run *r)
{
	const Tsrun__Scheduler *sc = r->proc->scheduler;

	if (sc) {
		struct tsrun_sched_attr a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.sched_policy = sc->policy;
		a.sched_flags = sc->flags;
		a.sched_nice = sc->nice;
		a.sched_priority = sc->priority;
		a.sched_runtime = sc->runtime;
		a.sched_deadline = sc->deadline;
		a.sched_period = sc->period;
		if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
			die(ERR(SCHED_SETATTR), errno, NULL, sc->policy);
	}
	if (r->proc->io_priority && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (int)r->proc->io_priority->value) < 0)
		die(ERR(IOPRIO_SET), errno, NULL, r->proc->io_priority->value);
	if (r->launch->personality && personality((unsigned long)r->launch->personality->value) < 0)
		die(ERR(PERSONALITY), errno, NULL, r->launch->personality->value);
}

/* execCPUAffinity: the initial CPUs (pid 0, the helper itself) or the final ones. */
void affinity_apply(const Tsrun__ExecPlan *e, bool final, pid_t pid)
{
	const Tsrun__CpuAffinity *a = e ? e->cpu_affinity : NULL;
	uint32_t *cpus = a ? (final ? a->final : a->initial) : NULL;
	size_t n = a ? (final ? a->n_final : a->n_initial) : 0;
	uint32_t max = 0;
	cpu_set_t *set;
	size_t size;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (cpus[i] > max)
			max = cpus[i];
	set = CPU_ALLOC(max + 1);
	if (!set)
		abort();
	size = CPU_ALLOC_SIZE(max + 1);
	CPU_ZERO_S(size, set);
	for (size_t i = 0; i < n; i++)
		CPU_SET_S(cpus[i], size, set);
	if (sched_setaffinity(pid, size, set) < 0)
		die(ERR(SCHED_SETAFFINITY), errno, final ? "final" : "initial", 0);
	CPU_FREE(set);
	progress("%s CPU affinity set", final ? "final" : "initial");
}

/* linux.memoryPolicy: set_mempolicy(2), inherited by the process across execve. */
void process_mempolicy(const Tsrun__Launch *l)
{
	const Tsrun__MemoryPolicy *m = l->memory_policy;

	if (!m)
		return;
	if (syscall(SYS_set_mempolicy, (int)m->mode, m->n_nodemask ? m->nodemask : NULL, (unsigned long)m->maxnode) < 0)
		die(ERR(SET_MEMPOLICY), errno, NULL, m->mode);
}

/* aa_change_onexec: the profile applies from the next execve. The newer per-LSM attribute
 * directory first, the old shared file otherwise (as runc). */
void process_apparmor(const Tsrun__Process *proc)
{
	const char *path = "/proc/thread-self/attr/apparmor/exec";
	struct stat st;
	char *buf;
	int n;

	if (!proc->apparmor_profile[0])
		return;
	if (stat(path, &st) < 0 && errno == ENOENT)
		path = "/proc/thread-self/attr/exec";
	n = asprintf(&buf, "exec %s", proc->apparmor_profile);
	if (n < 0)
		abort();
	if (write_file(path, buf, (size_t)n) < 0)
		die(ERR(APPARMOR_EXEC), errno, path, 0);
	free(buf);
}
