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
#include <unistd.h>

static const char *const CAP_NAMES[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

static const char *const RLIMIT_NAMES[] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
	"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

const char *cap_name(unsigned cap, char *buf, size_t len)
{
	if (cap < sizeof(CAP_NAMES) / sizeof(CAP_NAMES[0]))
		return CAP_NAMES[cap];
	snprintf(buf, len, "capability %u", cap);
	return buf;
}

void process_rlimits(const struct plan *p)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		const struct plan_rlimit *r = &p->rlimits[i];
		struct rlimit rl = {.rlim_cur = r->soft, .rlim_max = r->hard};
		if (prlimit(0, (__rlimit_resource_t)r->resource, &rl, NULL) < 0) {
			if (r->resource < sizeof(RLIMIT_NAMES) / sizeof(RLIMIT_NAMES[0]))
				die_errno("setrlimit %s", RLIMIT_NAMES[r->resource]);
			die_errno("setrlimit %u", r->resource);
		}
	}
}

/* Run in the helper before the container process is created: it inherits the value, and the
 * host's /proc is still the one we see. */
void process_oom(const struct plan *p)
{
	char buf[32];
	int n;
	if (!p->have_oom)
		return;
	n = snprintf(buf, sizeof(buf), "%d", p->oom_score_adj);
	if (write_file("/proc/self/oom_score_adj", buf, (size_t)n) < 0)
		die_errno("set oom_score_adj to %d", p->oom_score_adj);
}

/* Search permission on the session keyring for the keyring's possessor's user, or for
 * "other" in a user namespace, where the container's ids differ from the keyring's owner. */
#define KEY_USR_SEARCH 0x00080000u
#define KEY_OTH_SEARCH 0x00000008u

/* Join (creating if needed) the container's own session keyring, so that it does not share
 * the caller's: done in the container's user namespace, before the user switch. Its permissions
 * are set once, by the init that creates it (as runc): exec only joins it, and could not change
 * them in a user namespace (only the keyring's owner may, which an exec'd process is not). */
void process_join_keyring(const struct plan *p)
{
	char desc[512];
	unsigned perm;
	bool userns = false;
	if (!p->session_keyring)
		return;
	for (size_t i = 0; i < p->n_namespaces; i++)
		userns |= p->namespaces[i].type == CLONE_NEWUSER;
	long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, p->session_keyring);
	if (id < 0) {
		if (errno == ENOSYS) /* a kernel without keys: nothing to isolate */
			return;
		die_errno("join session keyring %s", p->session_keyring);
	}
	if (p->mode != MODE_CREATE)
		return;
	/* KEYCTL_DESCRIBE gives "type;uid;gid;perm;description", perm in hex. */
	long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof(desc) - 1);
	if (n < 0)
		die_errno("describe session keyring %s", p->session_keyring);
	desc[n < (long)sizeof(desc) ? n : (long)sizeof(desc) - 1] = '\0';
	const char *field = desc;
	for (int i = 0; i < 3 && field; i++) {
		field = strchr(field, ';');
		if (field)
			field++;
	}
	if (!field || sscanf(field, "%x", &perm) != 1)
		die("session keyring %s: cannot read its permissions from \"%s\"", p->session_keyring, desc);
	perm |= userns ? KEY_OTH_SEARCH : KEY_USR_SEARCH;
	if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm) < 0)
		die_errno("set permissions of session keyring %s", p->session_keyring);
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
	char nb[32];

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
					die_errnum(e, "capability %s", cap_name(c, nb, sizeof(nb)));
				if ((inh & bit) && !(cperm & bit) && !(cinh & bit) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1)
					die_errnum(e, "capability %s", cap_name(c, nb, sizeof(nb)));
			}
		}
	}
	die_errnum(e, "capset");
}

/* Groups, capabilities and user, in the order that keeps the privileges each step needs:
 * bounding set (needs CAP_SETPCAP), keep caps over the uid change, groups, gid, uid, then the
 * final capability sets and ambient ones, then no_new_privs. A seccomp filter that must be
 * loaded with CAP_SYS_ADMIN (no no_new_privs) is loaded first, as runc does. */
void process_identity(const struct plan *p, bool seccomp_early)
{
	uint64_t bnd = p->cap_bounding, eff = p->cap_effective, perm = p->cap_permitted;
	uint64_t inh = p->cap_inheritable, amb = p->cap_ambient;
	char nb[32];

	if (seccomp_early)
		filter_load(p, g_host_pid);
	if (p->have_caps) {
		unsigned last = last_cap();
		uint64_t known = last >= 63 ? ~0ull : ((1ull << (last + 1)) - 1);
		uint64_t unknown = (bnd | eff | perm | inh | amb) & ~known;
		for (unsigned c = 0; c < 64; c++)
			if (unknown & (1ull << c))
				warnx_line("%s is not known to the kernel, ignored", cap_name(c, nb, sizeof(nb)));
		bnd &= known;
		eff &= known;
		perm &= known;
		inh &= known;
		amb &= known;
		for (unsigned c = 0; c <= last; c++) {
			if (bnd & (1ull << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				die_errno("drop %s from the bounding set", cap_name(c, nb, sizeof(nb)));
		}
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die_errno("prctl PR_SET_KEEPCAPS");
	}
	if (setgroups(p->n_gids, p->gids) < 0) {
		/* setgroups is denied in a user namespace mapped by an unprivileged helper; that is
		 * only a problem when groups were asked for. */
		if (!(errno == EPERM && p->n_gids == 0))
			die_errno("setgroups");
	}
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		die_errno("setresgid %u", p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		die_errno("setresuid %u", p->uid);
	if (p->have_caps) {
		capset_or_die(eff, perm, inh);
		for (unsigned c = 0; c < 64; c++) {
			if (!(amb & (1ull << c)))
				continue;
			/* As runc: a capability that cannot be raised is a warning (TypeScript left out those
			 * missing from the inheritable or permitted set; securebits may still refuse one). */
			if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
				warnx_line("can't raise ambient capability %s: %s", cap_name(c, nb, sizeof(nb)), errtext(errno));
		}
	}
	if ((p->proc_flags & PROCESS_NO_NEW_PRIVILEGES) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno("prctl PR_SET_NO_NEW_PRIVS");
}

/* chdir before the user switch (root may reach directories the user cannot traverse to);
 * if root is refused (root-squashed or user-only directories), try again as the user. */
void process_cwd_first(const struct plan *p, bool *retry)
{
	*retry = false;
	if (!p->cwd || !*p->cwd)
		return;
	if (chdir(p->cwd) == 0)
		return;
	if (errno == EACCES || errno == EPERM) {
		*retry = true;
		return;
	}
	die_errno("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
}

/* After the switch: the delayed chdir, then the check that the cwd is inside the container's
 * root: a cwd reached through a leaked host fd (/proc/self/fd/N) is outside of it, and
 * getcwd(3) then fails (the kernel reports "(unreachable)"). */
void process_cwd_check(const struct plan *p, bool retry)
{
	char buf[4096];
	if (retry && chdir(p->cwd) < 0)
		die_errno("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
	if (!getcwd(buf, sizeof(buf)) || buf[0] != '/')
		die("current working directory is outside of container mount namespace root -- possible container breakout detected");
}

static const char *env_path(const struct plan *p)
{
	for (size_t i = 0; i < p->n_env; i++)
		if (strncmp(p->env[i], "PATH=", 5) == 0)
			return p->env[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static bool is_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
		return false;
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

/* args[0] as Go's exec.LookPath (which runc uses) finds it, with the same error texts. */
const char *process_resolve(const struct plan *p)
{
	const char *name = p->args[0];
	struct stat st;

	if (!*name)
		die("exec: \"\": executable file not found in $PATH");
	if (strchr(name, '/')) {
		if (stat(name, &st) < 0)
			die_errno("exec: \"%s\": stat %s", name, name);
		if (S_ISDIR(st.st_mode))
			die_errnum(EISDIR, "exec: \"%s\"", name);
		if (faccessat(AT_FDCWD, name, X_OK, AT_EACCESS) < 0)
			die_errnum(EACCES, "exec: \"%s\"", name);
		return name;
	}
	const char *path = env_path(p);
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		if (n > 0 && n + strlen(name) + 2 < 4096) {
			char *cand = malloc(n + strlen(name) + 2);
			if (!cand)
				abort();
			memcpy(cand, path, n);
			cand[n] = '/';
			strcpy(cand + n + 1, name);
			if (is_executable(cand))
				return cand;
			free(cand);
		}
		path += n;
		if (*path == ':')
			path++;
	}
	die("exec: \"%s\": executable file not found in $PATH", name);
}

/* Every fd above stdio and the preserved ones gets close-on-exec: our own (the sync socket,
 * the fifo) stay usable until execve, nothing else reaches the container process. */
void process_close_fds(const struct plan *p)
{
	unsigned first = 3 + p->preserve_fds;
	if (close_range(first, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		die_errno("close_range");
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

void process_exec(const struct plan *p, const char *path)
{
	execve(path, (char *const *)p->args, (char *const *)p->env);
	int e = errno;
	if (g_report_fd >= 0) {
		report_line("error", "exec failed: %s", errtext(e));
	} else {
		char buf[256];
		int n = snprintf(buf, sizeof(buf), "exec failed: %s\n", errtext(e));
		if (n > 0)
			write_all(2, buf, (size_t)n);
	}
	_exit(e == EACCES ? 126 : 127);
}
