/* Namespaces: joining (setns), the time namespace, clone, and the uid/gid map handshake. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct {
	uint32_t flag;
	const char *name;
} NS[] = {
	{CLONE_NEWUSER, "user"},    {CLONE_NEWNS, "mount"}, {CLONE_NEWPID, "pid"},
	{CLONE_NEWNET, "network"},  {CLONE_NEWIPC, "ipc"},  {CLONE_NEWUTS, "uts"},
	{CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWTIME, "time"},
};

/* true when the parent could not map gids without denying setgroups (unprivileged helper). */
static bool setgroups_denied;

int ns_flag_index(uint32_t flag)
{
	for (size_t i = 0; i < sizeof(NS) / sizeof(NS[0]); i++)
		if (NS[i].flag == flag)
			return (int)i;
	return -1;
}

const char *ns_name(uint32_t flag)
{
	int i = ns_flag_index(flag);
	return i < 0 ? "unknown" : NS[i].name;
}

bool plan_has_ns(const struct plan *p, uint32_t flag)
{
	for (size_t i = 0; i < p->n_namespaces; i++)
		if (p->namespaces[i].type == flag)
			return true;
	return false;
}

static bool plan_new_ns(const struct plan *p, uint32_t flag)
{
	for (size_t i = 0; i < p->n_namespaces; i++)
		if (p->namespaces[i].type == flag && !p->namespaces[i].path)
			return true;
	return false;
}

bool plan_joins_ns(const struct plan *p, uint32_t flag)
{
	for (size_t i = 0; i < p->n_namespaces; i++)
		if (p->namespaces[i].type == flag && p->namespaces[i].path)
			return true;
	return false;
}

/* Namespaces the clone creates. cgroup: the child unshares it once placed in its cgroups;
 * time: the parent unshares it before the clone (offsets must be set before anyone enters). */
uint32_t plan_new_ns_flags(const struct plan *p)
{
	uint32_t flags = 0;
	for (size_t i = 0; i < p->n_namespaces; i++)
		if (!p->namespaces[i].path)
			flags |= p->namespaces[i].type;
	return flags & ~(uint32_t)(CLONE_NEWCGROUP | CLONE_NEWTIME);
}

/*
 * Joins every namespace that has a path. All paths are opened first (a path such as
 * /proc/PID/ns/net may be unreachable once the mount namespace is joined). Then: namespaces
 * we may join with our current privileges are joined before the user namespace (as root
 * that is all of them, including ones owned by the initial user namespace such as a time
 * namespace or a CNI network namespace, which could no longer be joined from inside the
 * container's user namespace); the user namespace next; and last any namespace that failed
 * with EPERM before it, which is owned by the joined user namespace (unprivileged helper).
 */
void join_namespaces(const struct plan *p)
{
	int fds[64];
	size_t n = p->n_namespaces < 64 ? p->n_namespaces : 64;
	bool deferred[64] = {0};
	int user_idx = -1;

	for (size_t i = 0; i < n; i++) {
		const struct plan_ns *ns = &p->namespaces[i];
		fds[i] = -1;
		if (!ns->path)
			continue;
		fds[i] = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			die_errno("open %s namespace %s", ns_name(ns->type), ns->path);
		if (ns->type == CLONE_NEWUSER)
			user_idx = (int)i;
	}
	for (size_t i = 0; i < n; i++) {
		const struct plan_ns *ns = &p->namespaces[i];
		if (fds[i] < 0 || (int)i == user_idx)
			continue;
		if (setns(fds[i], (int)ns->type) < 0) {
			if (errno == EPERM && user_idx >= 0) {
				deferred[i] = true;
				continue;
			}
			die_errno("join %s namespace %s", ns_name(ns->type), ns->path);
		}
		close(fds[i]);
		fds[i] = -1;
	}
	if (user_idx >= 0) {
		if (setns(fds[user_idx], CLONE_NEWUSER) < 0)
			die_errno("join user namespace %s", p->namespaces[user_idx].path);
		close(fds[user_idx]);
		for (size_t i = 0; i < n; i++) {
			if (!deferred[i])
				continue;
			if (setns(fds[i], (int)p->namespaces[i].type) < 0)
				die_errno("join %s namespace %s", ns_name(p->namespaces[i].type),
					  p->namespaces[i].path);
			close(fds[i]);
		}
	}
}

/* A new time namespace: unshare it (it applies to children) and set its offsets. */
void setup_time_ns(const struct plan *p)
{
	char buf[1024];
	size_t len = 0;

	if (!plan_new_ns(p, CLONE_NEWTIME))
		return;
	if (unshare(CLONE_NEWTIME) < 0)
		die_errno("unshare time namespace");
	for (size_t i = 0; i < p->n_time_offsets && len < sizeof(buf) - 64; i++) {
		const struct plan_timeoff *t = &p->time_offsets[i];
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %lld %u\n", t->clock,
					(long long)t->secs, t->nsecs);
	}
	if (len > 0 && write_file("/proc/self/timens_offsets", buf, len) < 0)
		die_errno("write /proc/self/timens_offsets");
}

static void write_map(pid_t pid, const char *file, const struct plan_idmap *m, size_t n)
{
	char path[64], buf[4096];
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(buf) - 40; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].container_id,
					m[i].host_id, m[i].size);
	if (len == 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if (write_file(path, buf, len) < 0)
		die_errno("write %s", file);
}

/* Rootless: runs the setuid HELPER (newuidmap or newgidmap) as `HELPER PID C H S [C H S]...`,
 * which checks the ranges against /etc/subuid or /etc/subgid and writes FILE for us. What it
 * prints becomes the error text when it fails. */
static void run_map_helper(const char *helper, const char *file, pid_t pid, const struct plan_idmap *m, size_t n)
{
	enum { MAX_LINES = 340 }; /* the kernel's limit on lines in a map */
	char nums[1 + 3 * MAX_LINES][12];
	char *argv[3 + 3 * MAX_LINES];
	char out[1024];
	size_t len = 0, a = 0;
	int fds[2], st = 0;
	pid_t c;

	if (n == 0)
		return;
	if (n > MAX_LINES)
		die("%s: %zu mappings, the kernel takes at most %d", file, n, MAX_LINES);
	argv[a++] = (char *)helper;
	snprintf(nums[0], sizeof(nums[0]), "%d", (int)pid);
	argv[a++] = nums[0];
	for (size_t i = 0; i < n; i++) {
		snprintf(nums[1 + 3 * i], 12, "%u", m[i].container_id);
		snprintf(nums[2 + 3 * i], 12, "%u", m[i].host_id);
		snprintf(nums[3 + 3 * i], 12, "%u", m[i].size);
		argv[a++] = nums[1 + 3 * i];
		argv[a++] = nums[2 + 3 * i];
		argv[a++] = nums[3 + 3 * i];
	}
	argv[a] = NULL;
	if (pipe2(fds, O_CLOEXEC) < 0)
		die_errno("pipe for %s", helper);
	c = fork();
	if (c < 0)
		die_errno("fork to run %s", helper);
	if (c == 0) {
		/* stdout and stderr into the pipe; the fds made above are close-on-exec */
		if (dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
			_exit(127);
		execv(helper, argv);
		dprintf(2, "cannot run it: %s", errtext(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], out + len, sizeof(out) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof(out) - 1)
			break;
	}
	close(fds[0]);
	while (waitpid(c, &st, 0) < 0) {
		if (errno != EINTR)
			die_errno("wait for %s", helper);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	out[len] = '\0';
	for (char *q = out; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	while (len > 0 && out[len - 1] == ' ')
		out[--len] = '\0';
	if (len > 0)
		die("write %s with %s: %s", file, helper, out);
	if (WIFEXITED(st))
		die("write %s with %s: exit status %d", file, helper, WEXITSTATUS(st));
	die("write %s with %s: killed by signal %d", file, helper, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Parent, new user namespace: write the child's maps. As root the maps are written as they
 * are; an unprivileged helper must deny setgroups before it may write a gid_map, and maps
 * anything but its own id through newuidmap/newgidmap (the plan names them, rootless). */
void write_id_maps(const struct plan *p, pid_t pid)
{
	if (!plan_new_ns(p, CLONE_NEWUSER))
		return;
	if (p->uid_map_helper)
		run_map_helper(p->uid_map_helper, "uid_map", pid, p->uid_maps, p->n_uid_maps);
	else
		write_map(pid, "uid_map", p->uid_maps, p->n_uid_maps);
	if (p->gid_map_helper) {
		run_map_helper(p->gid_map_helper, "gid_map", pid, p->gid_maps, p->n_gid_maps);
		return;
	}
	if (geteuid() != 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		if (write_file(path, "deny", 4) < 0)
			die_errno("write setgroups");
		setgroups_denied = true;
	}
	write_map(pid, "gid_map", p->gid_maps, p->n_gid_maps);
}

/* Child in a user namespace (a new one, its maps written; or one joined, exec too): become root
 * of the namespace, as runc does, so that what the process sets up before its user switch (the
 * pty, the session keyring) belongs to ids the namespace maps. */
void child_enter_userns(const struct plan *p)
{
	if (!plan_has_ns(p, CLONE_NEWUSER))
		return;
	if (setresgid(0, 0, 0) < 0)
		die_errno("setresgid 0 in the user namespace (is gid 0 mapped?)");
	if (setresuid(0, 0, 0) < 0)
		die_errno("setresuid 0 in the user namespace (is uid 0 mapped?)");
	if (!setgroups_denied && setgroups(0, NULL) < 0 && errno != EPERM)
		die_errno("setgroups in the new user namespace");
}

/* fork(2) that also creates namespaces. With no new stack the child continues on a copy of
 * ours, as with fork; the argument order of raw clone does not matter when all are zero. */
pid_t clone_child(uint32_t flags)
{
	long r = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, 0, 0, 0);
	if (r < 0)
		die_errno("clone (%s)", flags ? "new namespaces" : "fork");
	return (pid_t)r;
}
