/*
 * Hooks the helper runs (docs/architecture.md, "Hooks"):
 *
 *  - startContainer hooks, run by the container init itself after `tsrun start` released it
 *    and before the execve of the user process: in the container (after pivot_root, so the path
 *    resolves there), as the container's user, each with the state JSON on its stdin, exactly
 *    its argv and env, its stdout and stderr captured for the error message, killed (SIGKILL)
 *    when it runs past its timeout.
 *  - the --enter mode, through which TypeScript runs createContainer hooks: join the cgroups
 *    and namespaces of a container process, then execve the hook (after a fork when a pid or
 *    time namespace was joined, since those apply to children only). TypeScript's execa then
 *    handles stdin, env and the timeout exactly as for the hooks it runs itself.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Each "@PID@" in text becomes pid (the state JSON is rendered by TypeScript before the pid exists). */
char *render_pid_token(const char *text, pid_t pid)
{
	char num[24];
	size_t nlen = (size_t)snprintf(num, sizeof(num), "%d", (int)pid), cap = strlen(text) + 1, len = 0;
	char *out;

	for (const char *s = strstr(text, "@PID@"); s; s = strstr(s + 5, "@PID@"))
		cap += nlen;
	out = malloc(cap);
	if (!out)
		abort();
	for (const char *s = text; *s;) {
		if (strncmp(s, "@PID@", 5) == 0) {
			memcpy(out + len, num, nlen);
			len += nlen;
			s += 5;
		} else {
			out[len++] = *s++;
		}
	}
	out[len] = '\0';
	return out;
}

/* ---------- startContainer hooks (in the init) ---------- */

struct capture {
	int fd;
	size_t len;
	char buf[2048]; /* the first bytes are kept for the error message, the rest is drained */
};

/* Reads what is there without blocking; closes the fd at EOF or on an error. */
static void capture_read(struct capture *c)
{
	char tmp[4096];

	while (c->fd >= 0) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(c->fd);
			c->fd = -1;
			return;
		}
		size_t keep = sizeof(c->buf) - 1 - c->len;
		if ((size_t)n < keep)
			keep = (size_t)n;
		memcpy(c->buf + c->len, tmp, keep);
		c->len += keep;
	}
}

/* The captured text without its trailing newlines. */
static int capture_text_len(const struct capture *c)
{
	size_t n = c->len;
	while (n > 0 && (c->buf[n - 1] == '\n' || c->buf[n - 1] == '\r'))
		n--;
	return (int)n;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fl = fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (fl < 0)
		die_errno("fcntl O_NONBLOCK");
}

static void describe_exit(int st, char *buf, size_t len)
{
	if (WIFEXITED(st)) {
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		const char *d = sigdescr_np(WTERMSIG(st));
		char name[64];
		snprintf(name, sizeof(name), "%s", d ? d : "unknown signal");
		if (name[0] >= 'A' && name[0] <= 'Z' && !(name[1] >= 'A' && name[1] <= 'Z'))
			name[0] = (char)(name[0] - 'A' + 'a');
		snprintf(buf, len, "signal: %s", name);
	} else {
		snprintf(buf, len, "status 0x%x", st);
	}
}

/* Closes every fd from `from` on except `keep`. */
static int close_from_except(unsigned from, int keep)
{
	if (keep >= (int)from) {
		if (keep > (int)from && close_range(from, (unsigned)keep - 1, 0) < 0)
			return -1;
		return close_range((unsigned)keep + 1, ~0u, 0);
	}
	return close_range(from, ~0u, 0);
}

static _Noreturn void hook_child(const struct plan_hook *h, const char *const *envp, int in, int out, int err, int report)
{
	int e;

	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || close_from_except(3, report) < 0) {
		e = errno;
	} else {
		reset_signals();
		execve(h->path, (char *const *)h->argv, (char *const *)envp);
		e = errno;
	}
	/* The report pipe is close-on-exec: EOF there means the execve worked. */
	if (write_all(report, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* envp: the hook's own environment, or the process's when it has none (START_HOOK_PROCESS_ENV). */
static int run_one(const struct plan_hook *h, const char *const *envp, const char *state, char *detail, size_t dlen)
{
	int in[2], out[2], err[2], rep[2];
	struct capture co, ce;
	size_t slen = strlen(state), off = 0;
	uint64_t deadline = h->timeout ? now_ns() + (uint64_t)h->timeout * 1000000000ull : 0;
	bool timed_out = false, broken = false;
	int st = 0, wfd, pidfd, exec_errno = 0, r;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(rep, O_CLOEXEC) < 0) {
		snprintf(detail, dlen, "pipe: %s", errtext(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(detail, dlen, "fork/exec %s: %s", h->path, errtext(errno));
		return -1;
	}
	if (pid == 0)
		hook_child(h, envp, in[0], out[1], err[1], rep[1]);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(rep[1]);
	r = read_all(rep[0], &exec_errno, sizeof(exec_errno));
	close(rep[0]);
	if (r == 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(in[1]);
		close(out[0]);
		close(err[0]);
		snprintf(detail, dlen, "fork/exec %s: %s", h->path, errtext(exec_errno));
		return -1;
	}

	wfd = in[1];
	co.fd = out[0];
	ce.fd = err[0];
	co.len = ce.len = 0;
	set_nonblock(wfd);
	set_nonblock(co.fd);
	set_nonblock(ce.fd);
	if (slen == 0) {
		close(wfd);
		wfd = -1;
	}
	/* Without a pidfd (an old kernel, or a seccomp filter that refuses it) poll in 10 ms steps. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	for (;;) {
		struct pollfd pf[4];
		int n = 0, iw = -1, io = -1, ie = -1, ms = -1;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(detail, dlen, "wait: %s", errtext(errno));
			kill(pid, SIGKILL);
			broken = true;
			break;
		}
		if (deadline) {
			uint64_t now = now_ns();
			if (now >= deadline) {
				kill(pid, SIGKILL);
				while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
					;
				timed_out = true;
				break;
			}
			uint64_t left = (deadline - now) / 1000000ull + 1;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (pidfd < 0 && (ms < 0 || ms > 10))
			ms = 10;
		if (wfd >= 0) {
			pf[n] = (struct pollfd){.fd = wfd, .events = POLLOUT};
			iw = n++;
		}
		if (co.fd >= 0) {
			pf[n] = (struct pollfd){.fd = co.fd, .events = POLLIN};
			io = n++;
		}
		if (ce.fd >= 0) {
			pf[n] = (struct pollfd){.fd = ce.fd, .events = POLLIN};
			ie = n++;
		}
		if (pidfd >= 0)
			pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		if (poll(pf, (nfds_t)n, ms) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(detail, dlen, "poll: %s", errtext(errno));
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			broken = true;
			break;
		}
		if (iw >= 0 && pf[iw].revents) {
			ssize_t k = write(wfd, state + off, slen - off);
			if (k > 0)
				off += (size_t)k;
			/* EPIPE (SIGPIPE is ignored here): the hook does not read its stdin. */
			if ((k < 0 && errno != EAGAIN && errno != EINTR) || off == slen) {
				close(wfd);
				wfd = -1;
			}
		}
		if (io >= 0 && pf[io].revents)
			capture_read(&co);
		if (ie >= 0 && pf[ie].revents)
			capture_read(&ce);
	}
	/* What the hook wrote before it ended; a child of it that keeps the pipes open is not waited for. */
	if (wfd >= 0)
		close(wfd);
	capture_read(&co);
	capture_read(&ce);
	if (co.fd >= 0)
		close(co.fd);
	if (ce.fd >= 0)
		close(ce.fd);
	if (pidfd >= 0)
		close(pidfd);
	if (broken)
		return -1; /* detail already says why */
	if (timed_out) {
		snprintf(detail, dlen, "hook ran past specified timeout of %u.0s", h->timeout);
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	{
		char how[96];
		describe_exit(st, how, sizeof(how));
		snprintf(detail, dlen, "%s, stdout: %.*s, stderr: %.*s", how, capture_text_len(&co), co.buf,
			 capture_text_len(&ce), ce.buf);
	}
	return -1;
}

int run_start_hooks(const struct plan *p, pid_t host_pid, char *why, size_t whylen)
{
	char *state = render_pid_token(p->start_state ? p->start_state : "", host_pid);
	char detail[6144];

	for (size_t i = 0; i < p->n_start_hooks; i++) {
		const struct plan_hook *h = &p->start_hooks[i];
		if (run_one(h, h->envp ? h->envp : p->env, state, detail, sizeof(detail)) < 0) {
			snprintf(why, whylen, "error running startContainer hook #%zu: %s", i, detail);
			free(state);
			return -1;
		}
	}
	free(state);
	return 0;
}

/* ---------- --enter: createContainer hooks in the container's namespaces ---------- */

static const struct {
	const char *file;
	int flag;
} ENTER_NS[] = {
	{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
	{"pid", CLONE_NEWPID},       {"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS}, {"user", CLONE_NEWUSER},
};
#define N_ENTER_NS (sizeof(ENTER_NS) / sizeof(ENTER_NS[0]))

static pid_t g_enter_child;

/* SIGTERM is how TypeScript ends a hook that ran past its timeout: the hook is killed for sure
 * and reaped here. (Were this process SIGKILLed instead, the hook would die of its parent-death
 * signal but be reparented, as a zombie, to the host's init, and the container's pid namespace
 * could not go away until that reaps it.) Other signals are passed on as they are. */
static void forward_signal(int sig)
{
	if (g_enter_child > 0)
		kill(g_enter_child, sig == SIGTERM ? SIGKILL : sig);
}

static _Noreturn void enter_usage(void)
{
	die("usage: tsrun-helper --enter PID [--cwd DIR] [--cgroup-procs FILE]... -- PATH ARGV0 [ARG]...");
}

static _Noreturn void enter_exec(const char *path, char **argv)
{
	int e;

	reset_signals();
	execve(path, argv, environ);
	e = errno;
	fprintf(stderr, "fork/exec %s: %s\n", path, errtext(e));
	_exit(e == EACCES ? 126 : 127);
}

/* Opens /proc/PID/ns/NAME unless it is the namespace we are in already; -1 then. */
static int open_ns(pid_t pid, const char *file)
{
	char path[64], self[64];
	struct stat a, b;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, file);
	snprintf(self, sizeof(self), "/proc/self/ns/%s", file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && access("/proc/self/ns", F_OK) == 0 && kill(pid, 0) == 0)
			return -1; /* a namespace type this kernel does not have */
		die_errno("open %s", path);
	}
	if (fstat(fd, &a) < 0)
		die_errno("stat %s", path);
	if (stat(self, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(fd);
		return -1;
	}
	return fd;
}

_Noreturn void enter_main(int argc, char **argv)
{
	const char *cwd = NULL, *cgroups[64];
	size_t ncg = 0;
	int fds[N_ENTER_NS], user = -1, i = 3;
	bool deferred[N_ENTER_NS] = {0}, fork_needed = false;
	char *end;
	long target;

	g_report_fd = -1; /* errors go to stderr, which execa captures */
	if (argc < 3)
		enter_usage();
	target = strtol(argv[2], &end, 10);
	if (*end || target <= 0 || target > INT_MAX)
		enter_usage();
	for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (i + 1 >= argc)
			enter_usage();
		if (strcmp(argv[i], "--cwd") == 0)
			cwd = argv[i + 1];
		else if (strcmp(argv[i], "--cgroup-procs") == 0 && ncg < sizeof(cgroups) / sizeof(cgroups[0]))
			cgroups[ncg++] = argv[i + 1];
		else
			enter_usage();
	}
	if (i + 2 >= argc) /* "--", PATH and ARGV0 */
		enter_usage();
	const char *path = argv[i + 1];
	char **hook_argv = &argv[i + 2];

	/* Host paths first: the cgroups, then every namespace file before any is joined. */
	for (size_t k = 0; k < ncg; k++) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
		if (write_file(cgroups[k], buf, (size_t)n) < 0)
			die_errno("add pid %d to %s", (int)getpid(), cgroups[k]);
	}
	for (size_t k = 0; k < N_ENTER_NS; k++) {
		fds[k] = open_ns((pid_t)target, ENTER_NS[k].file);
		if (fds[k] >= 0 && ENTER_NS[k].flag == CLONE_NEWUSER)
			user = (int)k;
		if (fds[k] >= 0 && (ENTER_NS[k].flag == CLONE_NEWPID || ENTER_NS[k].flag == CLONE_NEWTIME))
			fork_needed = true;
	}
	/* As in join_namespaces: what our privileges allow first, then the user namespace, then
	 * what only that user namespace allows. */
	for (size_t k = 0; k < N_ENTER_NS; k++) {
		if (fds[k] < 0 || (int)k == user)
			continue;
		if (setns(fds[k], ENTER_NS[k].flag) < 0) {
			if (errno == EPERM && user >= 0) {
				deferred[k] = true;
				continue;
			}
			die_errno("join the %s namespace of process %ld", ENTER_NS[k].file, target);
		}
		close(fds[k]);
	}
	if (user >= 0) {
		if (setns(fds[user], CLONE_NEWUSER) < 0)
			die_errno("join the user namespace of process %ld", target);
		close(fds[user]);
		for (size_t k = 0; k < N_ENTER_NS; k++) {
			if (!deferred[k])
				continue;
			if (setns(fds[k], ENTER_NS[k].flag) < 0)
				die_errno("join the %s namespace of process %ld", ENTER_NS[k].file, target);
			close(fds[k]);
		}
		/* Root of the container's user namespace, as the init is when it runs hooks. */
		if (setgroups(0, NULL) < 0 && errno != EPERM)
			die_errno("setgroups in the container's user namespace");
		if (setresgid(0, 0, 0) < 0)
			die_errno("setresgid 0 in the container's user namespace");
		if (setresuid(0, 0, 0) < 0)
			die_errno("setresuid 0 in the container's user namespace");
	}
	if (cwd && chdir(cwd) < 0)
		die_errno("chdir %s", cwd);
	if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		die_errno("close_range");
	if (!fork_needed)
		enter_exec(path, hook_argv);

	/* A pid or time namespace applies to children only. This process stays to pass on the
	 * signals execa sends and the exit status; its SIGKILL (a timeout) takes the child along. */
	pid_t parent = getpid();
	g_enter_child = fork();
	if (g_enter_child < 0)
		die_errno("fork into the pid namespace of process %ld", target);
	if (g_enter_child == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			die_errno("prctl PR_SET_PDEATHSIG");
		if (getppid() != parent && getppid() != 0)
			_exit(1);
		enter_exec(path, hook_argv);
	}
	{
		static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = forward_signal;
		sigemptyset(&sa.sa_mask);
		for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
			if (sigaction(sigs[k], &sa, NULL) < 0)
				die_errno("sigaction");
	}
	int st;
	while (waitpid(g_enter_child, &st, 0) < 0) {
		if (errno != EINTR)
			die_errno("wait for the hook");
	}
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		sigset_t set;
		signal(sig, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(255);
}
