/* The container process: rlimits, oom_score_adj, groups, capabilities, user, no_new_privs,
 * cwd (with the CVE-2024-21626 check), lookup of args[0], fd hygiene, execve. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void process_rlimits(const Tsrun__Process *proc)
{
	for (size_t i = 0; i < proc->n_rlimits; i++) {
		const Tsrun__Rlimit *r = proc->rlimits[i];
		struct rlimit rl = {.rlim_cur = r->soft, .rlim_max = r->hard};
		if (prlimit(0, (__rlimit_resource_t)r->resource, &rl, NULL) < 0)
			die(ERR(SETRLIMIT), errno, NULL, r->resource);
	}
}

/* Run in the helper before the container process is created: it inherits the value, and the
 * host's /proc is still the one we see. */
void process_oom(const Tsrun__Process *proc)
{
	char buf[32];
	int n;
	if (!proc->oom_score_adj)
		return;
	n = snprintf(buf, sizeof(buf), "%d", proc->oom_score_adj->value);
	if (write_file("/proc/self/oom_score_adj", buf, (size_t)n) < 0)
		die(ERR(SET_OOM_SCORE_ADJ), errno, NULL, proc->oom_score_adj->value);
}

/* Search permission on the session keyring for the keyring's possessor's user, or for
 * "other" in a user namespace, where the container's ids differ from the keyring's owner. */
#define KEY_USR_SEARCH 0x00080000u
#define KEY_OTH_SEARCH 0x00000008u

/* Join (creating if needed) the container's own session keyring, so that it does not share
 * the caller's: done in the container's user namespace, before the user switch. Its permissions
 * are set once, by the init that creates it (as runc): exec only joins it, and could not change
 * them in a user namespace (only the keyring's owner may, which an exec'd process is not). */
void process_join_keyring(const struct run *r)
{
	const char *name = r->launch->session_keyring;
	char desc[512];
	unsigned perm;
	bool userns = launch_has_ns(r->launch, CLONE_NEWUSER);
	if (!name[0])
		return;
	long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name);
	if (id < 0) {
		if (errno == ENOSYS) /* a kernel without keys: nothing to isolate */
			return;
		die(ERR(KEYRING_JOIN), errno, name, 0);
	}
	if (!r->create)
		return;
	/* KEYCTL_DESCRIBE gives "type;uid;gid;perm;description", perm in hex. */
	long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof(desc) - 1);
	if (n < 0)
		die(ERR(KEYRING_DESCRIBE), errno, name, 0);
	desc[n < (long)sizeof(desc) ? n : (long)sizeof(desc) - 1] = '\0';
	const char *field = desc;
	for (int i = 0; i < 3 && field; i++) {
		field = strchr(field, ';');
		if (field)
			field++;
	}
	if (!field || sscanf(field, "%x", &perm) != 1)
		die_detail(ERR(KEYRING_PERMISSIONS_UNREADABLE), 0, name, 0, desc);
	perm |= userns ? KEY_OTH_SEARCH : KEY_USR_SEARCH;
	if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm) < 0)
		die(ERR(KEYRING_SETPERM), errno, name, 0);
}

static unsigned last_cap(void)
{
	unsigned c = 63;
	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability; no /proc needed. */
	while (c > 0 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
		c--;
	return c;
}

static void capset_or_die(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	data[0].permitted = (uint32_t)perm;
	data[1].permitted = (uint32_t)(perm >> 32);
	data[0].inheritable = (uint32_t)inh;
	data[1].inheritable = (uint32_t)(inh >> 32);
	if (syscall(SYS_capset, &hdr, data) == 0)
		return;
	int e = errno;
	if (e == EPERM) {
		/* Name the capability we do not hold. */
		struct __user_cap_data_struct cur[2];
		memset(cur, 0, sizeof(cur));
		if (syscall(SYS_capget, &hdr, cur) == 0) {
			uint64_t cperm = cur[0].permitted | ((uint64_t)cur[1].permitted << 32);
			uint64_t cinh = cur[0].inheritable | ((uint64_t)cur[1].inheritable << 32);
			for (unsigned c = 0; c < 64; c++) {
				uint64_t bit = 1ull << c;
				if (((perm | eff) & bit) && !(cperm & bit))
					die(ERR(CAPABILITY), e, NULL, c);
				if ((inh & bit) && !(cperm & bit) && !(cinh & bit) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1)
					die(ERR(CAPABILITY), e, NULL, c);
			}
		}
	}
	die(ERR(CAPSET), e, NULL, 0);
}

#define CAP_SYS_ADMIN_BIT (1ull << 21)

/* The capability sets the process ends with, and whether CAP_SYS_ADMIN is held beyond them
 * until the seccomp filter is loaded (process_identity_finish). */
static uint64_t final_eff, final_perm, final_inh, final_amb;
static bool holding_admin;

/* Without process.capabilities (never in a plan TypeScript makes) the sets are what the
 * user switch leaves (capabilities(7)): all but the inheritable one go when root becomes
 * another user. */
static void final_sets_without_caps(const Tsrun__Process *proc)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct cur[2];
	uid_t r, e, s;

	memset(cur, 0, sizeof(cur));
	if (syscall(SYS_capget, &hdr, cur) < 0)
		die(ERR(CAPGET), errno, NULL, 0);
	if (getresuid(&r, &e, &s) < 0)
		die(ERR(GETRESUID), errno, NULL, 0);
	final_inh = cur[0].inheritable | ((uint64_t)cur[1].inheritable << 32);
	final_eff = cur[0].effective | ((uint64_t)cur[1].effective << 32);
	final_perm = cur[0].permitted | ((uint64_t)cur[1].permitted << 32);
	if ((r == 0 || e == 0 || s == 0) && proc->uid != 0)
		final_eff = final_perm = 0;
}

/* The final capability sets, then the ambient ones (each needs its capability permitted and
 * inheritable). */
static void caps_final(void)
{
	capset_or_die(final_eff, final_perm, final_inh);
	for (unsigned c = 0; c < 64; c++) {
		if (!(final_amb & (1ull << c)))
			continue;
		/* As runc: a capability that cannot be raised is a warning (TypeScript left out those
		 * missing from the inheritable or permitted set; securebits may still refuse one). */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			warn_event(WARN(AMBIENT_CAPABILITY_NOT_RAISED), NULL, (int64_t)errno << 32 | c);
	}
}

/* Groups, capabilities and user, in the order that keeps the privileges each step needs:
 * bounding set (needs CAP_SETPCAP), keep caps over the uid change, groups, gid, uid, then the
 * final capability sets and ambient ones, then no_new_privs.
 * hold_admin: a seccomp filter is to be loaded without no_new_privs, which needs CAP_SYS_ADMIN.
 * Unless the final effective set has it, CAP_SYS_ADMIN then stays effective (beside the final
 * effective set) until process_identity_finish(), called right after the filter is loaded: the
 * user switch and everything checked as the user (cwd, executable) come before the filter, and
 * only capset and the ambient raises after it. */
void process_identity(const struct run *r, bool hold_admin)
{
	const Tsrun__Process *proc = r->proc;
	const Tsrun__Capabilities *caps = proc->capabilities;
	uint64_t bnd = caps ? caps->bounding : 0;

	set_stage(STAGE(IDENTITY));
	if (caps) {
		unsigned last = last_cap();
		uint64_t known = last >= 63 ? ~0ull : ((1ull << (last + 1)) - 1);
		uint64_t unknown = (bnd | caps->effective | caps->permitted | caps->inheritable | caps->ambient) & ~known;
		for (unsigned c = 0; c < 64; c++)
			if (unknown & (1ull << c))
				warn_event(WARN(CAPABILITY_UNKNOWN_TO_KERNEL), NULL, c);
		bnd &= known;
		final_eff = caps->effective & known;
		final_perm = caps->permitted & known;
		final_inh = caps->inheritable & known;
		final_amb = caps->ambient & known;
		for (unsigned c = 0; c <= last; c++) {
			if (bnd & (1ull << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				die(ERR(CAPABILITY_BOUNDING_DROP), errno, NULL, c);
		}
	} else if (hold_admin) {
		final_sets_without_caps(proc);
	}
	holding_admin = hold_admin && !(final_eff & CAP_SYS_ADMIN_BIT);
	if ((caps || holding_admin) && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die(ERR(PRCTL), errno, "PR_SET_KEEPCAPS", 0);
	gid_t *gids = calloc(proc->n_additional_gids + 1, sizeof(gid_t));
	if (!gids)
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
	for (size_t i = 0; i < proc->n_additional_gids; i++)
		gids[i] = proc->additional_gids[i];
	if (setgroups(proc->n_additional_gids, gids) < 0) {
		/* setgroups is denied in a user namespace mapped by an unprivileged helper; that is
		 * only a problem when groups were asked for. */
		if (!(errno == EPERM && proc->n_additional_gids == 0))
			die(ERR(SETGROUPS), errno, NULL, 0);
	}
	free(gids);
	if (setresgid(proc->gid, proc->gid, proc->gid) < 0)
		die(ERR(SETRESGID), errno, NULL, proc->gid);
	if (setresuid(proc->uid, proc->uid, proc->uid) < 0)
		die(ERR(SETRESUID), errno, NULL, proc->uid);
	if (holding_admin)
		capset_or_die(final_eff | CAP_SYS_ADMIN_BIT, final_perm | CAP_SYS_ADMIN_BIT, final_inh);
	else if (caps)
		caps_final();
	if (proc->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(ERR(PRCTL), errno, "PR_SET_NO_NEW_PRIVS", 0);
}

/* After the filter: drop the CAP_SYS_ADMIN held for it, raise the ambient capabilities. */
void process_identity_finish(void)
{
	if (!holding_admin)
		return;
	holding_admin = false;
	caps_final();
}

/* chdir before the user switch (root may reach directories the user cannot traverse to);
 * if root is refused (root-squashed or user-only directories), try again as the user. */
void process_cwd_first(const Tsrun__Process *proc, bool *retry)
{
	*retry = false;
	if (!proc->cwd[0])
		return;
	if (chdir(proc->cwd) == 0)
		return;
	if (errno == EACCES || errno == EPERM) {
		*retry = true;
		return;
	}
	die(ERR(CHDIR_CWD), errno, proc->cwd, 0);
}

/* After the switch: the delayed chdir, then the check that the cwd is inside the container's
 * root: a cwd reached through a leaked host fd (/proc/self/fd/N) is outside of it, and
 * getcwd(3) then fails (the kernel reports "(unreachable)"). */
void process_cwd_check(const Tsrun__Process *proc, bool retry)
{
	char buf[4096];
	if (retry && chdir(proc->cwd) < 0)
		die(ERR(CHDIR_CWD), errno, proc->cwd, 0);
	if (!getcwd(buf, sizeof(buf)) || buf[0] != '/')
		die(ERR(CWD_OUTSIDE_ROOT), 0, proc->cwd, 0);
}

static bool is_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
		return false;
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

/* args[0] as Go's exec.LookPath (which runc uses) finds it, in the directories TypeScript
 * chose (proc->search_path). */
const char *process_resolve(const struct run *r)
{
	const char *name = r->argv[0];
	struct stat st;

	set_stage(STAGE(EXEC));
	if (!*name)
		die(ERR(EXEC_NOT_FOUND), 0, name, 0);
	if (strchr(name, '/')) {
		if (stat(name, &st) < 0)
			die(ERR(EXEC_STAT), errno, name, 0);
		if (S_ISDIR(st.st_mode))
			die(ERR(EXEC_NOT_EXECUTABLE), EISDIR, name, 0);
		if (faccessat(AT_FDCWD, name, X_OK, AT_EACCESS) < 0)
			die(ERR(EXEC_NOT_EXECUTABLE), EACCES, name, 0);
		return name;
	}
	for (size_t i = 0; i < r->proc->n_search_path; i++) {
		char *cand;
		if (asprintf(&cand, "%s/%s", r->proc->search_path[i], name) < 0)
			abort();
		if (is_executable(cand))
			return cand;
		free(cand);
	}
	die(ERR(EXEC_NOT_FOUND), 0, name, 0);
}

/*
 * Managers hand the container the host's /dev/null as stdio (conmon, containerd's shim,
 * `tsrun create </dev/null`), and the helper opens it for a closed one: the container's root
 * could then `chmod 600 /proc/self/fd/0` and break /dev/null for the whole host. As runc does,
 * every such fd (stdio and the preserved ones) becomes the container's own /dev/null, opened
 * after pivot_root (create) or setns (exec), so that "/dev/null" is the container's. A null
 * device that is the container's /dev/null itself is kept.
 */
void process_replace_null_fds(const Tsrun__Launch *l)
{
	unsigned end = 3 + l->preserve_fds;

	for (unsigned fd = 0; fd < end; fd++) {
		struct stat st, nst;
		int fl, fdfl, mine;
		if (fstat((int)fd, &st) < 0) {
			if (errno == EBADF)
				continue;
			die(ERR(NULL_FD_STAT), errno, NULL, fd);
		}
		if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			continue;
		fl = fcntl((int)fd, F_GETFL);
		fdfl = fcntl((int)fd, F_GETFD);
		if (fl < 0 || fdfl < 0)
			die(ERR(NULL_FD_FCNTL), errno, NULL, fd);
		/* With the fd's own access mode and flags. */
		mine = open("/dev/null", (fl & (O_ACCMODE | O_PATH | O_APPEND | O_NONBLOCK)) | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (mine < 0)
			die(ERR(NULL_FD_OPEN_OWN), errno, "/dev/null", fd);
		if (fstat(mine, &nst) < 0)
			die(ERR(NULL_FD_OPEN_OWN), errno, "/dev/null", fd);
		if (!S_ISCHR(nst.st_mode) || nst.st_rdev != makedev(1, 3))
			die(ERR(NULL_FD_OWN_NOT_NULL), 0, "/dev/null", fd);
		if ((st.st_dev != nst.st_dev || st.st_ino != nst.st_ino) && dup3(mine, (int)fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
			die(ERR(NULL_FD_REPLACE), errno, "/dev/null", fd);
		close(mine);
	}
}

/* Every fd above stdio and the preserved ones gets close-on-exec: our own (the sync socket,
 * the fifo) stay usable until execve, nothing else reaches the container process. */
void process_close_fds(const Tsrun__Launch *l)
{
	unsigned first = 3 + l->preserve_fds;
	if (close_range(first, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		die(ERR(CLOSE_RANGE), errno, NULL, first);
}

void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		signal(s, SIG_DFL); /* fails harmlessly for the C library's internal signals */
	}
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void process_exec(const struct run *r, const char *path)
{
	execve(path, r->argv, r->envp);
	int e = errno;
	/* As a shell would: 126 found but not runnable, 127 otherwise (the init's exit status). */
	send_failure(ERR(EXECVE), e, path, 0, NULL);
	_exit(e == EACCES ? 126 : 127);
}
