/* Process attributes TypeScript decided on: scheduler (sched_setattr), I/O priority
 * (ioprio_set), execution domain (personality), CPU affinity (exec's execCPUAffinity) and the
 * AppArmor profile for the next execve. Each is a plain syscall or file write, in the order
 * runc does them (docs/plan-format.md). */
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
void process_attrs(const struct plan *p)
{
	if (p->have_sched) {
		struct tsrun_sched_attr a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.sched_policy = p->sched_policy;
		a.sched_flags = p->sched_flags;
		a.sched_nice = p->sched_nice;
		a.sched_priority = p->sched_priority;
		a.sched_runtime = p->sched_runtime;
		a.sched_deadline = p->sched_deadline;
		a.sched_period = p->sched_period;
		if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
			die_errno("error setting scheduler");
	}
	if (p->have_ioprio && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (int)p->ioprio) < 0)
		die_errno("failed to set io priority");
	if (p->have_personality && personality((unsigned long)p->personality) < 0)
		die_errno("unable to set personality");
}

/* execCPUAffinity: which 0 is "initial", 1 "final". pid 0 is the caller. */
void affinity_apply(const struct plan *p, int which, pid_t pid)
{
	const struct plan_affinity *a = &p->affinity[which];
	uint32_t max = 0;
	cpu_set_t *set;
	size_t size;

	if (!a->have)
		return;
	for (size_t i = 0; i < a->n_cpus; i++)
		if (a->cpus[i] > max)
			max = a->cpus[i];
	set = CPU_ALLOC(max + 1);
	if (!set)
		abort();
	size = CPU_ALLOC_SIZE(max + 1);
	CPU_ZERO_S(size, set);
	for (size_t i = 0; i < a->n_cpus; i++)
		CPU_SET_S(a->cpus[i], size, set);
	if (sched_setaffinity(pid, size, set) < 0)
		die_errno("set %s CPU affinity", which == 0 ? "initial" : "final");
	CPU_FREE(set);
	debug_stage("%s CPU affinity set", which == 0 ? "initial" : "final");
}

/* aa_change_onexec: the profile applies from the next execve. The newer per-LSM attribute
 * directory first, the old shared file otherwise (as runc). */
void process_apparmor(const struct plan *p)
{
	const char *path = "/proc/thread-self/attr/apparmor/exec";
	struct stat st;
	char *buf;
	int n;

	if (!p->apparmor_profile || !*p->apparmor_profile)
		return;
	if (stat(path, &st) < 0 && errno == ENOENT)
		path = "/proc/thread-self/attr/exec";
	n = asprintf(&buf, "exec %s", p->apparmor_profile);
	if (n < 0)
		abort();
	if (write_file(path, buf, (size_t)n) < 0)
		die_errno("apparmor failed to apply profile: write %s", path);
	free(buf);
}
