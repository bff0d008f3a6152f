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

/* true when the parent could not map gids without denying setgroups (unprivileged helper). */
static bool setgroups_denied;

bool launch_has_ns(const Tsrun__Launch *l, uint32_t flag)
{
	for (size_t i = 0; i < l->n_namespaces; i++)
		if (l->namespaces[i]->clone_flag == flag)
			return true;
	return false;
}

bool launch_new_ns(const Tsrun__Launch *l, uint32_t flag)
{
	for (size_t i = 0; i < l->n_namespaces; i++)
		if (l->namespaces[i]->clone_flag == flag && !l->namespaces[i]->path[0])
			return true;
	return false;
}

/* Namespaces the clone creates. cgroup: the child unshares it once placed in its cgroups;
 * time: the parent unshares it before the clone (offsets must be set before anyone enters). */
uint32_t launch_new_ns_flags(const Tsrun__Launch *l)
{
	uint32_t flags = 0;
	for (size_t i = 0; i < l->n_namespaces; i++)
		if (!l->namespaces[i]->path[0])
			flags |= l->namespaces[i]->clone_flag;
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
void join_namespaces(Tsrun__Namespace *const *nss, size_t count)
{
	int fds[64];
	size_t n = count < 64 ? count : 64;
	bool deferred[64] = {0};
	int user_idx = -1;

	set_stage(STAGE(NAMESPACES));
	for (size_t i = 0; i < n; i++) {
		const Tsrun__Namespace *ns = nss[i];
		fds[i] = -1;
		if (!ns->path[0])
			continue;
		fds[i] = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			die(ERR(NAMESPACE_OPEN), errno, ns->path, ns->clone_flag);
		if (ns->clone_flag == CLONE_NEWUSER)
			user_idx = (int)i;
	}
	for (size_t i = 0; i < n; i++) {
		const Tsrun__Namespace *ns = nss[i];
		if (fds[i] < 0 || (int)i == user_idx)
			continue;
		if (setns(fds[i], (int)ns->clone_flag) < 0) {
			if (errno == EPERM && user_idx >= 0) {
				deferred[i] = true;
				continue;
			}
			die(ERR(NAMESPACE_JOIN), errno, ns->path, ns->clone_flag);
		}
		close(fds[i]);
		fds[i] = -1;
	}
	if (user_idx >= 0) {
		if (setns(fds[user_idx], CLONE_NEWUSER) < 0)
			die(ERR(NAMESPACE_JOIN), errno, nss[user_idx]->path, CLONE_NEWUSER);
		close(fds[user_idx]);
		for (size_t i = 0; i < n; i++) {
			if (!deferred[i])
				continue;
			if (setns(fds[i], (int)nss[i]->clone_flag) < 0)
				die(ERR(NAMESPACE_JOIN), errno, nss[i]->path, nss[i]->clone_flag);
			close(fds[i]);
		}
	}
}

/* A new time namespace: unshare it (it applies to children) and set its offsets. */
void setup_time_ns(const Tsrun__CreatePlan *c)
{
	char buf[1024];
	size_t len = 0;

	if (!launch_new_ns(c->launch, CLONE_NEWTIME))
		return;
	if (unshare(CLONE_NEWTIME) < 0)
		die(ERR(NAMESPACE_UNSHARE), errno, NULL, CLONE_NEWTIME);
	for (size_t i = 0; i < c->n_time_offsets && len < sizeof(buf) - 64; i++) {
		const Tsrun__TimeOffset *t = c->time_offsets[i];
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %lld %u\n", t->clock_id,
					(long long)t->secs, t->nanosecs);
	}
	if (len > 0 && write_file("/proc/self/timens_offsets", buf, len) < 0)
		die(ERR(WRITE_FILE), errno, "/proc/self/timens_offsets", 0);
}

static void write_map(pid_t pid, const char *file, Tsrun__IdMapping *const *m, size_t n)
{
	char path[64], buf[4096];
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(buf) - 40; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i]->container_id,
					m[i]->host_id, m[i]->size);
	if (len == 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if (write_file(path, buf, len) < 0)
		die(ERR(WRITE_FILE), errno, file, 0);
}

/* Rootless: runs the setuid HELPER (newuidmap or newgidmap) as `HELPER PID C H S [C H S]...`,
 * which checks the ranges against /etc/subuid or /etc/subgid and writes the map for us. What it
 * prints is the failure's detail. gid: which of the two maps (for the failure's code). */
static void run_map_helper(const char *helper, bool gid, pid_t pid, Tsrun__IdMapping *const *m, size_t n)
{
	enum { MAX_LINES = 340 }; /* the kernel's limit on lines in a map */
	Tsrun__ErrorCode code = gid ? ERR(GID_MAP_HELPER) : ERR(UID_MAP_HELPER);
	char nums[1 + 3 * MAX_LINES][12];
	char *argv[3 + 3 * MAX_LINES];
	char out[1024];
	size_t len = 0, a = 0;
	int fds[2], rep[2], st = 0, exec_errno = 0;
	pid_t c;

	if (n == 0)
		return;
	if (n > MAX_LINES)
		die(ERR(TOO_MANY_ID_MAPPINGS), 0, gid ? "gid_map" : "uid_map", (int64_t)n);
	argv[a++] = (char *)helper;
	snprintf(nums[0], sizeof(nums[0]), "%d", (int)pid);
	argv[a++] = nums[0];
	for (size_t i = 0; i < n; i++) {
		snprintf(nums[1 + 3 * i], 12, "%u", m[i]->container_id);
		snprintf(nums[2 + 3 * i], 12, "%u", m[i]->host_id);
		snprintf(nums[3 + 3 * i], 12, "%u", m[i]->size);
		argv[a++] = nums[1 + 3 * i];
		argv[a++] = nums[2 + 3 * i];
		argv[a++] = nums[3 + 3 * i];
	}
	argv[a] = NULL;
	if (pipe2(fds, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
		die(ERR(PIPE), errno, helper, 0);
	c = fork();
	if (c < 0)
		die(ERR(FORK), errno, helper, 0);
	if (c == 0) {
		/* stdout and stderr into the pipe; the fds made above are close-on-exec, so EOF on the
		 * report pipe means the execv worked */
		int e;
		if (dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
			_exit(127);
		execv(helper, argv);
		e = errno;
		if (write_all(rep[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(fds[1]);
	close(rep[1]);
	if (read_all(rep[0], &exec_errno, sizeof(exec_errno)) < 0)
		exec_errno = 0;
	close(rep[0]);
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
			die(ERR(WAIT), errno, helper, c);
	}
	if (exec_errno)
		die(code, exec_errno, helper, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	out[len] = '\0';
	die_detail(code, 0, helper, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0), out);
}

/* Parent, new user namespace: write the child's maps. As root the maps are written as they
 * are; an unprivileged helper must deny setgroups before it may write a gid_map, and maps
 * anything but its own id through newuidmap/newgidmap (the plan names them, rootless). */
void write_id_maps(const Tsrun__CreatePlan *c, pid_t pid)
{
	if (!launch_new_ns(c->launch, CLONE_NEWUSER))
		return;
	set_stage(STAGE(ID_MAPPING));
	if (c->uid_map_helper[0])
		run_map_helper(c->uid_map_helper, false, pid, c->uid_mappings, c->n_uid_mappings);
	else
		write_map(pid, "uid_map", c->uid_mappings, c->n_uid_mappings);
	if (c->gid_map_helper[0]) {
		run_map_helper(c->gid_map_helper, true, pid, c->gid_mappings, c->n_gid_mappings);
		return;
	}
	if (geteuid() != 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		if (write_file(path, "deny", 4) < 0)
			die(ERR(WRITE_FILE), errno, "setgroups", 0);
		setgroups_denied = true;
	}
	write_map(pid, "gid_map", c->gid_mappings, c->n_gid_mappings);
}

/* Child in a user namespace (a new one, its maps written; or one joined, exec too): become root
 * of the namespace, as runc does, so that what the process sets up before its user switch (the
 * pty, the session keyring) belongs to ids the namespace maps. */
void child_enter_userns(const Tsrun__Launch *l)
{
	if (!launch_has_ns(l, CLONE_NEWUSER))
		return;
	if (setresgid(0, 0, 0) < 0)
		die(ERR(USERNS_SETRESGID_ROOT), errno, NULL, 0);
	if (setresuid(0, 0, 0) < 0)
		die(ERR(USERNS_SETRESUID_ROOT), errno, NULL, 0);
	if (!setgroups_denied && setgroups(0, NULL) < 0 && errno != EPERM)
		die(ERR(USERNS_SETGROUPS), errno, NULL, 0);
}

/* fork(2) that also creates namespaces. With no new stack the child continues on a copy of
 * ours, as with fork; the argument order of raw clone does not matter when all are zero. */
pid_t clone_child(uint32_t flags)
{
	long r = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, 0, 0, 0);
	if (r < 0)
		die(ERR(CLONE), errno, NULL, flags);
	return (pid_t)r;
}
