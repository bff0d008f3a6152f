/*
 * checker: the conformance suite's eyes inside a container.
 *
 * A small static program, bind-mounted or copied into the test rootfs as /checker. It reports
 * what the process it runs as sees, as one JSON object on stdout:
 *
 *     checker ids caps "stat /dev/null" ...      (each command is one argv word or a word
 *     checker ids caps stat /dev/null ...         followed by its fixed number of arguments)
 *
 * prints {"ids":{...},"caps":{...},"stat /dev/null":{...}}: one key per command, the command
 * and its arguments joined by a space. Output is flushed after every command, so a command
 * that blocks (wait-signal) leaves a prefix that becomes valid JSON by appending "}".
 *
 * `checker hook DIR NAME [STATUS]` is the second mode: run as an OCI hook, it reads the state
 * from stdin and writes DIR/NAME.json describing how and where it ran, appends NAME to
 * DIR/order, and exits with STATUS (default 0). `checker console-receiver SOCKET OUT` is the
 * third, on the host: the other end of a runtime's --console-socket.
 *
 * Written for this suite; uses only raw syscalls and glibc calls that link statically without
 * NSS (no getpwnam and friends).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- JSON output ---------------------------------------------------------------------- */

static FILE *out;

static void jstrn(const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out); /* UTF-8 passes through as is */
		}
	}
	fputc('"', out);
}

static void jstr(const char *s)
{
	if (!s)
		fputs("null", out);
	else
		jstrn(s, strlen(s));
}

static void jkey(int *first, const char *k)
{
	if (!*first)
		fputc(',', out);
	*first = 0;
	jstr(k);
	fputc(':', out);
}

static void jkstr(int *first, const char *k, const char *v)
{
	jkey(first, k);
	jstr(v);
}

static void jkint(int *first, const char *k, long long v)
{
	jkey(first, k);
	fprintf(out, "%lld", v);
}

static void jkbool(int *first, const char *k, int v)
{
	jkey(first, k);
	fputs(v ? "true" : "false", out);
}

/* {"ok":bool,"errno":N,"error":"..."} members for the result of a call. */
static void jresult(int *first, int ok, int err)
{
	jkbool(first, "ok", ok);
	jkint(first, "errno", ok ? 0 : err);
	jkstr(first, "error", ok ? "" : strerror(err));
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* Read a whole (small) file; returns malloc'd NUL-terminated text or NULL with errno set. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= (1u << 24))
				break;
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
}

/* Print the lines of a file as a JSON array of strings (or null when unreadable). */
static void jlines_of(const char *path)
{
	char *text = slurp(path, NULL);
	if (!text) {
		fputs("null", out);
		return;
	}
	fputc('[', out);
	int first = 1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!first)
			fputc(',', out);
		first = 0;
		jstr(line);
	}
	fputc(']', out);
	free(text);
}

static const char *const ns_names[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
				       "time", "time_for_children", "user", "uts", NULL};

/* {"cgroup":"cgroup:[4026531835]",...} for /proc/<who>/ns/ */
static void jnamespaces(const char *who)
{
	int first = 1;
	fputc('{', out);
	for (int i = 0; ns_names[i]; i++) {
		char path[PATH_MAX], target[256];
		snprintf(path, sizeof path, "/proc/%s/ns/%s", who, ns_names[i]);
		ssize_t n = readlink(path, target, sizeof target - 1);
		jkey(&first, ns_names[i]);
		if (n < 0) {
			fputs("null", out);
		} else {
			target[n] = 0;
			jstr(target);
		}
	}
	fputc('}', out);
}

/* ---- commands ---------------------------------------------------------------------------- */

static void cmd_ids(char **a)
{
	(void)a;
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	getresuid(&ruid, &euid, &suid);
	getresgid(&rgid, &egid, &sgid);
	gid_t groups[256];
	int ng = getgroups(256, groups);
	mode_t um = umask(0);
	umask(um);
	int first = 1;
	fputc('{', out);
	jkint(&first, "uid", ruid);
	jkint(&first, "euid", euid);
	jkint(&first, "suid", suid);
	jkint(&first, "gid", rgid);
	jkint(&first, "egid", egid);
	jkint(&first, "sgid", sgid);
	jkey(&first, "groups");
	fputc('[', out);
	for (int i = 0; i < ng; i++)
		fprintf(out, "%s%u", i ? "," : "", groups[i]);
	fputc(']', out);
	jkint(&first, "umask", um);
	fputc('}', out);
}

static void jcapset(uint64_t bits)
{
	fputc('[', out);
	int first = 1;
	for (int i = 0; i < 64; i++) {
		if (bits & ((uint64_t)1 << i)) {
			fprintf(out, "%s%d", first ? "" : ",", i);
			first = 0;
		}
	}
	fputc(']', out);
}

static void cmd_caps(char **a)
{
	(void)a;
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	int ok = syscall(SYS_capget, &hdr, data) == 0;
	uint64_t eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	uint64_t prm = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	uint64_t inh = (uint64_t)data[1].inheritable << 32 | data[0].inheritable;
	uint64_t bnd = 0, amb = 0;
	int last = -1;
	for (int i = 0; i < 64; i++) {
		int r = prctl(PR_CAPBSET_READ, i, 0, 0, 0);
		if (r < 0)
			break;
		last = i;
		if (r == 1)
			bnd |= (uint64_t)1 << i;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
			amb |= (uint64_t)1 << i;
	}
	int first = 1;
	fputc('{', out);
	jkbool(&first, "capget", ok);
	jkey(&first, "effective");
	jcapset(eff);
	jkey(&first, "permitted");
	jcapset(prm);
	jkey(&first, "inheritable");
	jcapset(inh);
	jkey(&first, "bounding");
	jcapset(bnd);
	jkey(&first, "ambient");
	jcapset(amb);
	jkint(&first, "lastCap", last);
	fputc('}', out);
}

static void cmd_nnp(char **a)
{
	(void)a;
	fprintf(out, "%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
}

static const struct {
	const char *name;
	int res;
} rlimits[] = {
	{"RLIMIT_AS", RLIMIT_AS},
	{"RLIMIT_CORE", RLIMIT_CORE},
	{"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA},
	{"RLIMIT_FSIZE", RLIMIT_FSIZE},
	{"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
	{"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
	{"RLIMIT_NICE", RLIMIT_NICE},
	{"RLIMIT_NOFILE", RLIMIT_NOFILE},
	{"RLIMIT_NPROC", RLIMIT_NPROC},
	{"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
	{"RLIMIT_RTTIME", RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	{"RLIMIT_STACK", RLIMIT_STACK},
};

/* uint64 values as decimal strings: JSON numbers lose precision above 2^53. */
static void jkrlim(int *first, const char *k, rlim_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
	jkstr(first, k, buf);
}

static void cmd_rlimits(char **a)
{
	(void)a;
	int first = 1;
	fputc('{', out);
	for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++) {
		struct rlimit rl;
		jkey(&first, rlimits[i].name);
		if (getrlimit(rlimits[i].res, &rl) != 0) {
			fputs("null", out);
			continue;
		}
		int f2 = 1;
		fputc('{', out);
		jkrlim(&f2, "soft", rl.rlim_cur);
		jkrlim(&f2, "hard", rl.rlim_max);
		fputc('}', out);
	}
	fputc('}', out);
}

static void cmd_file_value(const char *path)
{
	size_t n;
	char *text = slurp(path, &n);
	int first = 1;
	fputc('{', out);
	jresult(&first, text != NULL, errno);
	if (text) {
		trim(text);
		jkstr(&first, "value", text);
	}
	fputc('}', out);
	free(text);
}

static void cmd_oom(char **a)
{
	(void)a;
	cmd_file_value("/proc/self/oom_score_adj");
}

static void cmd_env(char **a)
{
	(void)a;
	fputc('[', out);
	for (char **e = environ; e && *e; e++) {
		if (e != environ)
			fputc(',', out);
		jstr(*e);
	}
	fputc(']', out);
}

static void cmd_cwd(char **a)
{
	(void)a;
	char buf[PATH_MAX];
	if (getcwd(buf, sizeof buf))
		jstr(buf);
	else
		fputs("null", out);
}

static void cmd_uname(char **a)
{
	(void)a;
	struct utsname u;
	uname(&u);
	int first = 1;
	fputc('{', out);
	jkstr(&first, "sysname", u.sysname);
	jkstr(&first, "nodename", u.nodename);
	jkstr(&first, "release", u.release);
	jkstr(&first, "machine", u.machine);
	jkstr(&first, "domainname", u.domainname);
	fputc('}', out);
}

static void cmd_personality(char **a)
{
	(void)a;
	struct utsname u;
	uname(&u);
	int first = 1;
	fputc('{', out);
	jkint(&first, "persona", personality(0xffffffff));
	jkstr(&first, "machine", u.machine);
	fputc('}', out);
}

static void cmd_ns(char **a)
{
	(void)a;
	jnamespaces("self");
}

static void cmd_mounts(char **a)
{
	(void)a;
	jlines_of("/proc/self/mountinfo");
}

static void cmd_cgroup(char **a)
{
	(void)a;
	jlines_of("/proc/self/cgroup");
}

static void cmd_stat(char **a)
{
	struct stat st;
	int r = lstat(a[0], &st);
	int first = 1;
	fputc('{', out);
	jkbool(&first, "exists", r == 0);
	jkint(&first, "errno", r == 0 ? 0 : errno);
	if (r == 0) {
		const char *type = S_ISREG(st.st_mode) ? "f" : S_ISDIR(st.st_mode) ? "d" : S_ISCHR(st.st_mode) ? "c"
			: S_ISBLK(st.st_mode) ? "b" : S_ISFIFO(st.st_mode) ? "p" : S_ISLNK(st.st_mode) ? "l" : "s";
		jkstr(&first, "type", type);
		jkint(&first, "mode", st.st_mode & 07777);
		jkint(&first, "uid", st.st_uid);
		jkint(&first, "gid", st.st_gid);
		jkint(&first, "major", major(st.st_rdev));
		jkint(&first, "minor", minor(st.st_rdev));
		jkint(&first, "size", st.st_size);
		jkint(&first, "dev", (long long)st.st_dev);
		jkint(&first, "ino", (long long)st.st_ino);
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlink(a[0], target, sizeof target - 1);
			target[n < 0 ? 0 : n] = 0;
			jkstr(&first, "target", target);
		}
	}
	fputc('}', out);
}

static void cmd_read(char **a)
{
	int fd = open(a[0], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int first = 1;
	fputc('{', out);
	if (fd < 0) {
		jresult(&first, 0, errno);
	} else {
		char buf[65536];
		ssize_t n = read(fd, buf, sizeof buf);
		int e = errno;
		close(fd);
		jresult(&first, n >= 0, e);
		if (n >= 0) {
			jkint(&first, "len", n);
			jkey(&first, "data");
			jstrn(buf, (size_t)n);
		}
	}
	fputc('}', out);
}

static void cmd_write(char **a)
{
	int fd = open(a[0], O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	int first = 1;
	fputc('{', out);
	if (fd < 0) {
		jresult(&first, 0, errno);
	} else {
		ssize_t n = write(fd, a[1], strlen(a[1]));
		int e = errno;
		close(fd);
		jresult(&first, n >= 0, e);
	}
	fputc('}', out);
}

/* Create a new file (and remove it again). */
static void cmd_create(char **a)
{
	int fd = open(a[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int e = errno;
	if (fd >= 0) {
		close(fd);
		unlink(a[0]);
	}
	int first = 1;
	fputc('{', out);
	jresult(&first, fd >= 0, e);
	fputc('}', out);
}

/* mkdir (and rmdir again): the syscall the seccomp tests deny. */
static void cmd_mkdir(char **a)
{
	int r = mkdir(a[0], 0700);
	int e = errno;
	if (r == 0)
		rmdir(a[0]);
	int first = 1;
	fputc('{', out);
	jresult(&first, r == 0, e);
	fputc('}', out);
}

/* Open a path read or write ("r"/"w"): device access under the devices cgroup. */
static void cmd_open(char **a)
{
	int flags = strcmp(a[1], "w") == 0 ? O_WRONLY : strcmp(a[1], "rw") == 0 ? O_RDWR : O_RDONLY;
	int fd = open(a[0], flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	int e = errno;
	if (fd >= 0)
		close(fd);
	int first = 1;
	fputc('{', out);
	jresult(&first, fd >= 0, e);
	fputc('}', out);
}

/* A few harmless syscalls by name, for seccomp rules (argument filters included). */
static void cmd_sys(char **a)
{
	long r;
	const char *n = a[0];
	errno = 0;
	if (strcmp(n, "getpid") == 0) {
		r = syscall(SYS_getpid);
	} else if (strcmp(n, "kill0") == 0) {
		r = syscall(SYS_kill, getpid(), 0);
	} else if (strcmp(n, "killwinch") == 0) {
		r = syscall(SYS_kill, getpid(), SIGWINCH); /* default action: ignore */
	} else if (strcmp(n, "chdir") == 0) {
		r = syscall(SYS_chdir, "/");
	} else if (strcmp(n, "getcwd") == 0) {
		char buf[PATH_MAX];
		r = syscall(SYS_getcwd, buf, sizeof buf);
	} else if (strcmp(n, "uname") == 0) {
		struct utsname u;
		r = syscall(SYS_uname, &u);
	} else if (strcmp(n, "getppid") == 0) {
		r = syscall(SYS_getppid);
	} else {
		r = -1;
		errno = ENOSYS;
	}
	int e = errno;
	int first = 1;
	fputc('{', out);
	jresult(&first, r >= 0, e);
	fputc('}', out);
}

static void cmd_sysctl(char **a)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/proc/sys/%s", a[0]);
	for (char *p = path + strlen("/proc/sys/"); *p; p++)
		if (*p == '.')
			*p = '/';
	cmd_file_value(path);
}

/* Directory entries (sorted by the caller if it cares), or {"errno":N}. */
static void cmd_ls(char **a)
{
	DIR *d = opendir(a[0]);
	if (!d) {
		fprintf(out, "{\"errno\":%d}", errno);
		return;
	}
	fputc('[', out);
	int first = 1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!first)
			fputc(',', out);
		first = 0;
		jstr(de->d_name);
	}
	closedir(d);
	fputc(']', out);
}

static void cmd_fds(char **a)
{
	(void)a;
	DIR *d = opendir("/proc/self/fd");
	fputc('[', out);
	if (d) {
		int first = 1;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			int fd = atoi(de->d_name);
			if (fd == dirfd(d))
				continue;
			char path[64], target[PATH_MAX];
			snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
			ssize_t n = readlink(path, target, sizeof target - 1);
			target[n < 0 ? 0 : n] = 0;
			if (!first)
				fputc(',', out);
			first = 0;
			int f2 = 1;
			fputc('{', out);
			jkint(&f2, "fd", fd);
			jkstr(&f2, "target", target);
			fputc('}', out);
		}
		closedir(d);
	}
	fputc(']', out);
}

static void cmd_tty(char **a)
{
	(void)a;
	int first = 1;
	fputc('{', out);
	jkbool(&first, "stdin", isatty(0));
	jkbool(&first, "stdout", isatty(1));
	jkbool(&first, "stderr", isatty(2));
	struct winsize ws;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0) {
		jkint(&first, "rows", ws.ws_row);
		jkint(&first, "cols", ws.ws_col);
	}
	struct stat st;
	if (fstat(0, &st) == 0 && S_ISCHR(st.st_mode)) {
		jkint(&first, "stdinMajor", major(st.st_rdev));
		jkint(&first, "stdinMinor", minor(st.st_rdev));
	}
	fputc('}', out);
}

static void cmd_sched(char **a)
{
	(void)a;
	int first = 1;
	fputc('{', out);
	jkint(&first, "policy", sched_getscheduler(0));
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	jkint(&first, "nice", nice);
	jkint(&first, "ioprio", syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0));
	cpu_set_t set;
	CPU_ZERO(&set);
	jkey(&first, "cpus");
	fputc('[', out);
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int f2 = 1;
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set)) {
				fprintf(out, "%s%d", f2 ? "" : ",", i);
				f2 = 0;
			}
	}
	fputc(']', out);
	fputc('}', out);
}

static void cmd_time(char **a)
{
	(void)a;
	struct timespec mono, boot;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	int first = 1;
	fputc('{', out);
	jkint(&first, "monotonic", mono.tv_sec);
	jkint(&first, "boottime", boot.tv_sec);
	jkey(&first, "offsets");
	jlines_of("/proc/self/timens_offsets");
	fputc('}', out);
}

static void cmd_exit(char **a)
{
	fputs("}\n", out);
	fflush(out);
	_exit(atoi(a[0]));
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
	got_signal = sig;
}

/*
 * Block until a catchable signal arrives, report it, continue. Writes "ready" to stderr once
 * the handlers are in place (pid 1 of a pid namespace only gets signals it handles).
 */
static void cmd_wait_signal(char **a)
{
	(void)a;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD && s != SIGWINCH && s != SIGURG)
			sigaction(s, &sa, NULL);
	fflush(out);
	if (write(2, "ready\n", 6) < 0) {
		/* stderr closed: nothing to tell */
	}
	while (!got_signal)
		pause();
	fprintf(out, "%d", (int)got_signal);
}

static void cmd_argv(char **a);

static const struct command {
	const char *name;
	int nargs;
	void (*fn)(char **args);
} commands[] = {
	{"ids", 0, cmd_ids},
	{"caps", 0, cmd_caps},
	{"nnp", 0, cmd_nnp},
	{"rlimits", 0, cmd_rlimits},
	{"oom", 0, cmd_oom},
	{"env", 0, cmd_env},
	{"cwd", 0, cmd_cwd},
	{"uname", 0, cmd_uname},
	{"personality", 0, cmd_personality},
	{"ns", 0, cmd_ns},
	{"mounts", 0, cmd_mounts},
	{"cgroup", 0, cmd_cgroup},
	{"fds", 0, cmd_fds},
	{"tty", 0, cmd_tty},
	{"sched", 0, cmd_sched},
	{"time", 0, cmd_time},
	{"argv", 0, cmd_argv},
	{"stat", 1, cmd_stat},
	{"ls", 1, cmd_ls},
	{"read", 1, cmd_read},
	{"write", 2, cmd_write},
	{"create", 1, cmd_create},
	{"mkdir", 1, cmd_mkdir},
	{"open", 2, cmd_open},
	{"sys", 1, cmd_sys},
	{"sysctl", 1, cmd_sysctl},
	{"exit", 1, cmd_exit},
	{"wait-signal", 0, cmd_wait_signal},
	{NULL, 0, NULL},
};

static int g_argc;
static char **g_argv;

static void cmd_argv(char **a)
{
	(void)a;
	fputc('[', out);
	for (int i = 0; i < g_argc; i++) {
		if (i)
			fputc(',', out);
		jstr(g_argv[i]);
	}
	fputc(']', out);
}

/* ---- hook mode ----------------------------------------------------------------------------- */

/* The "pid" member of the state JSON on stdin (0 when absent). */
static long state_pid(const char *json)
{
	const char *p = strstr(json, "\"pid\"");
	if (!p)
		return 0;
	p += 5;
	while (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n')
		p++;
	return strtol(p, NULL, 10);
}

static int hook(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: checker hook DIR NAME [STATUS]\n");
		return 2;
	}
	const char *dir = argv[2], *name = argv[3];
	int status = argc > 4 ? atoi(argv[4]) : 0;

	size_t cap = 1 << 16, n = 0;
	char *in = malloc(cap + 1);
	if (!in)
		return 1;
	for (;;) {
		ssize_t r = read(0, in + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;
	}
	in[n] = 0;

	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s.json.tmp", dir, name);
	out = fopen(path, "w");
	if (!out)
		return 1;
	int first = 1;
	fputc('{', out);
	jkstr(&first, "name", name);
	jkey(&first, "argv");
	g_argc = argc;
	g_argv = argv;
	cmd_argv(NULL);
	jkey(&first, "env");
	cmd_env(NULL);
	jkey(&first, "stdin");
	jstrn(in, n);
	jkey(&first, "ns");
	jnamespaces("self");
	jkey(&first, "cwd");
	cmd_cwd(NULL);
	long pid = state_pid(in);
	jkint(&first, "statePid", pid);
	if (pid > 0) {
		char p[64];
		snprintf(p, sizeof p, "/proc/%ld/cmdline", pid);
		size_t len = 0;
		char *cmd = slurp(p, &len);
		jkey(&first, "statePidCmdline");
		if (cmd) {
			fputc('[', out);
			for (size_t i = 0; i < len;) {
				if (i)
					fputc(',', out);
				jstr(cmd + i);
				i += strlen(cmd + i) + 1;
			}
			fputc(']', out);
			free(cmd);
		} else {
			fputs("null", out);
		}
		snprintf(p, sizeof p, "/proc/%ld/stat", pid);
		char *st = slurp(p, NULL);
		char *rp = st ? strrchr(st, ')') : NULL;
		char pstate[2] = {rp && rp[1] && rp[2] ? rp[2] : 0, 0};
		jkstr(&first, "statePidState", st ? pstate : NULL);
		free(st);
		snprintf(p, sizeof p, "%ld", pid);
		jkey(&first, "statePidNs");
		jnamespaces(p);
	}
	fputs("}\n", out);
	if (fclose(out) != 0)
		return 1;
	char final[PATH_MAX];
	snprintf(final, sizeof final, "%s/%s.json", dir, name);
	if (rename(path, final) != 0)
		return 1;

	snprintf(path, sizeof path, "%s/order", dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char line[256];
		int len = snprintf(line, sizeof line, "%s\n", name);
		if (write(fd, line, (size_t)len) < 0)
			status = status ? status : 1;
		close(fd);
	}
	return status;
}

/* ---- console receiver mode ------------------------------------------------------------------ */

/*
 * `checker console-receiver SOCKET OUT`: listen on a unix socket for one connection (a runtime's
 * --console-socket), receive the pty master over SCM_RIGHTS, and copy what the container writes
 * to its terminal into OUT until the terminal closes. Runs on the host, not in a container.
 */
static int console_receiver(const char *sock, const char *outpath)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (s < 0 || strlen(sock) >= sizeof addr.sun_path)
		return 1;
	strcpy(addr.sun_path, sock);
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp", sock);
	struct sockaddr_un taddr = {.sun_family = AF_UNIX};
	if (strlen(tmp) >= sizeof taddr.sun_path)
		return 1;
	strcpy(taddr.sun_path, tmp);
	/* Bind under a temporary name and rename: the socket appears only once it listens. */
	if (bind(s, (struct sockaddr *)&taddr, sizeof taddr) != 0 || listen(s, 1) != 0 || rename(tmp, sock) != 0)
		return 1;
	int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return 1;
	char data[256];
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	if (recvmsg(c, &msg, 0) < 0)
		return 1;
	int master = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&master, CMSG_DATA(cm), sizeof master);
	close(c);
	close(s);
	unlink(sock);
	if (master < 0)
		return 1;
	int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o < 0)
		return 1;
	char buf[4096];
	for (;;) {
		ssize_t n = read(master, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EIO once every slave fd is closed */
		if (write(o, buf, (size_t)n) != n)
			break;
	}
	close(o);
	close(master);
	return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	if (argc > 1 && strcmp(argv[1], "hook") == 0)
		return hook(argc, argv);
	if (argc == 4 && strcmp(argv[1], "console-receiver") == 0)
		return console_receiver(argv[2], argv[3]);

	out = stdout;
	int first = 1;
	fputc('{', out);
	for (int i = 1; i < argc;) {
		const struct command *c = commands;
		while (c->name && strcmp(c->name, argv[i]) != 0)
			c++;
		if (!c->name) {
			fprintf(stderr, "checker: unknown command %s\n", argv[i]);
			fputs("}\n", out);
			return 2;
		}
		if (i + c->nargs > argc - 1) {
			fprintf(stderr, "checker: %s needs %d argument(s)\n", c->name, c->nargs);
			fputs("}\n", out);
			return 2;
		}
		char key[PATH_MAX * 2];
		size_t k = (size_t)snprintf(key, sizeof key, "%s", c->name);
		for (int j = 1; j <= c->nargs && k < sizeof key; j++)
			k += (size_t)snprintf(key + k, sizeof key - k, " %s", argv[i + j]);
		jkey(&first, key);
		c->fn(argv + i + 1);
		fflush(out);
		if (c->fn == cmd_argv)
			break;
		i += 1 + c->nargs;
	}
	fputs("}\n", out);
	fflush(out);
	return 0;
}
