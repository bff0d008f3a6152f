/*
 * Hooks the helper runs (docs/architecture.md, "Hooks"):
 *
 *  - startContainer hooks, run by the container init itself after `tsrun start` released it
 *    and before the execve of the user process: in the container (after pivot_root, so the path
 *    resolves there), as the container's user, each with the state JSON on its stdin, exactly
 *    its argv and env, its stdout and stderr captured for the error message, killed (SIGKILL)
 *    when it runs past its timeout.
 *  - the enter mode (an EnterPlan), through which TypeScript runs createContainer hooks: join
 *    the cgroups and namespaces of a container process, then execve the hook (after a fork when
 *    a pid or time namespace was joined, since those apply to children only). TypeScript's hook
 *    runner then handles stdin, env and the timeout exactly as for the hooks it runs itself.
 *
 * Neither words a failure: a startContainer hook's end goes to `tsrun start` as a HookOutcome,
 * and TypeScript words it as it words the hooks it runs itself (src/boundary/wording.ts).
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

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fl = fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (fl < 0)
		die(ERR(HOOK_IO), errno, "fcntl O_NONBLOCK", 0);
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

static _Noreturn void hook_child(const Tsrun__Hook *h, char *const *envp, int in, int out, int err, int report)
{
	int e;

	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || close_from_except(3, report) < 0) {
		e = errno;
	} else {
		reset_signals();
		execve(h->path, null_terminated(h->argv, h->n_argv), envp);
		e = errno;
	}
	/* The report pipe is close-on-exec: EOF there means the execve worked. */
	if (write_all(report, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* Runs one hook to its end; false when it failed, with how in *end (its captured output
 * pointing into co and ce). envp: the hook's environment. */
static bool run_one(const Tsrun__Hook *h, char *const *envp, const char *state, Tsrun__HookEnd *end, struct capture *co, struct capture *ce)
{
	int in[2], out[2], err[2], rep[2];
	size_t slen = strlen(state), off = 0;
	uint64_t deadline = h->timeout_seconds ? now_ns() + (uint64_t)h->timeout_seconds * 1000000000ull : 0;
	bool timed_out = false;
	int st = 0, wfd, pidfd, exec_errno = 0, r;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(rep, O_CLOEXEC) < 0)
		die(ERR(HOOK_IO), errno, "pipe", 0);
	pid = fork();
	if (pid < 0) {
		end->how_case = TSRUN__HOOK_END__HOW_START_ERRNO;
		end->start_errno = errno;
		return false;
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
		end->how_case = TSRUN__HOOK_END__HOW_START_ERRNO;
		end->start_errno = exec_errno;
		return false;
	}

	wfd = in[1];
	co->fd = out[0];
	ce->fd = err[0];
	co->len = ce->len = 0;
	set_nonblock(wfd);
	set_nonblock(co->fd);
	set_nonblock(ce->fd);
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
			int e = errno;
			kill(pid, SIGKILL);
			die(ERR(HOOK_IO), e, "wait", 0);
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
		if (co->fd >= 0) {
			pf[n] = (struct pollfd){.fd = co->fd, .events = POLLIN};
			io = n++;
		}
		if (ce->fd >= 0) {
			pf[n] = (struct pollfd){.fd = ce->fd, .events = POLLIN};
			ie = n++;
		}
		if (pidfd >= 0)
			pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		if (poll(pf, (nfds_t)n, ms) < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			die(ERR(HOOK_IO), e, "poll", 0);
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
			capture_read(co);
		if (ie >= 0 && pf[ie].revents)
			capture_read(ce);
	}
	/* What the hook wrote before it ended; a child of it that keeps the pipes open is not waited for. */
	if (wfd >= 0)
		close(wfd);
	capture_read(co);
	capture_read(ce);
	if (co->fd >= 0)
		close(co->fd);
	if (ce->fd >= 0)
		close(ce->fd);
	if (pidfd >= 0)
		close(pidfd);
	end->stdout_head.data = (uint8_t *)co->buf;
	end->stdout_head.len = co->len;
	end->stderr_head.data = (uint8_t *)ce->buf;
	end->stderr_head.len = ce->len;
	if (timed_out) {
		end->how_case = TSRUN__HOOK_END__HOW_TIMED_OUT_AFTER;
		end->timed_out_after = h->timeout_seconds;
		return false;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	if (WIFSIGNALED(st)) {
		end->how_case = TSRUN__HOOK_END__HOW_SIGNAL;
		end->signal = WTERMSIG(st);
	} else {
		end->how_case = TSRUN__HOOK_END__HOW_EXIT_STATUS;
		end->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	}
	return false;
}

static void write_outcome(int status_fd, const Tsrun__HookOutcome *o)
{
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;
	ev.event_case = TSRUN__FROM_HELPER__EVENT_HOOK_OUTCOME;
	ev.hook_outcome = (Tsrun__HookOutcome *)o;
	/* Best effort: the init ends either way, and a status fifo without "ok" already means failure to `tsrun start`. */
	if (status_fd >= 0 && frame_write(status_fd, &ev) < 0)
		_exit(1);
}

/* In the init, after the exec.fifo byte: each hook in order. The first failure is written to
 * the status fifo and ends the init; all passing is written as ok. */
void run_start_hooks(const Tsrun__StartHooks *h, pid_t host_pid, int status_fd, char *const *process_env)
{
	char *state = render_pid_token(h ? h->state : "", host_pid);
	Tsrun__HookOutcome o = TSRUN__HOOK_OUTCOME__INIT;

	set_stage(STAGE(HOOKS));
	for (size_t i = 0; h && i < h->n_hooks; i++) {
		static struct capture co, ce;
		Tsrun__HookEnd end = TSRUN__HOOK_END__INIT;
		const Tsrun__Hook *hook = h->hooks[i];
		char *const *envp = hook->process_env ? process_env : null_terminated(hook->env, hook->n_env);
		if (!run_one(hook, envp, state, &end, &co, &ce)) {
			o.index = (uint32_t)i;
			o.end = &end;
			write_outcome(status_fd, &o);
			_exit(1);
		}
	}
	free(state);
	o.ok = true;
	write_outcome(status_fd, &o);
}

/* ---------- enter mode: createContainer hooks in the container's namespaces ---------- */

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

/* The report socket is close-on-exec: TypeScript sees EOF without a Failure once the hook runs. */
static _Noreturn void enter_exec(const Tsrun__EnterPlan *e)
{
	reset_signals();
	execve(e->path, null_terminated(e->argv, e->n_argv), environ);
	die(ERR(HOOK_EXEC), errno, e->path, 0);
}

/* Opens a namespace to join, unless it is the one we are in already (setns refuses to join
 * our own user namespace); -1 then. */
static int open_ns(const Tsrun__Namespace *ns)
{
	char self[64];
	struct stat a, b;
	int fd = open(ns->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(ERR(NAMESPACE_OPEN), errno, ns->path, ns->clone_flag);
	if (fstat(fd, &a) < 0)
		die(ERR(NAMESPACE_OPEN), errno, ns->path, ns->clone_flag);
	snprintf(self, sizeof(self), "/proc/self/ns/%s", strrchr(ns->path, '/') ? strrchr(ns->path, '/') + 1 : "");
	if (stat(self, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(fd);
		return -1;
	}
	return fd;
}

_Noreturn void enter_main(const Tsrun__EnterPlan *e, int report_fd)
{
	int fds[64], user = -1;
	bool deferred[64] = {0};
	size_t n = e->n_namespaces < 64 ? e->n_namespaces : 64;
	char pid[32];
	int plen = snprintf(pid, sizeof(pid), "%d", (int)getpid());

	(void)report_fd;
	set_stage(STAGE(HOOKS));
	/* Host paths first: the cgroups, then every namespace file before any is joined. */
	for (size_t k = 0; k < e->n_cgroup_procs; k++)
		if (write_file(e->cgroup_procs[k], pid, (size_t)plen) < 0)
			die(ERR(CGROUP_PROCS_WRITE), errno, e->cgroup_procs[k], getpid());
	for (size_t k = 0; k < n; k++) {
		fds[k] = open_ns(e->namespaces[k]);
		if (fds[k] >= 0 && e->namespaces[k]->clone_flag == CLONE_NEWUSER)
			user = (int)k;
	}
	/* As in join_namespaces: what our privileges allow first, then the user namespace, then
	 * what only that user namespace allows. */
	for (size_t k = 0; k < n; k++) {
		if (fds[k] < 0 || (int)k == user)
			continue;
		if (setns(fds[k], (int)e->namespaces[k]->clone_flag) < 0) {
			if (errno == EPERM && user >= 0) {
				deferred[k] = true;
				continue;
			}
			die(ERR(NAMESPACE_JOIN), errno, e->namespaces[k]->path, e->namespaces[k]->clone_flag);
		}
		close(fds[k]);
	}
	if (user >= 0) {
		if (setns(fds[user], CLONE_NEWUSER) < 0)
			die(ERR(NAMESPACE_JOIN), errno, e->namespaces[user]->path, CLONE_NEWUSER);
		close(fds[user]);
		for (size_t k = 0; k < n; k++) {
			if (!deferred[k])
				continue;
			if (setns(fds[k], (int)e->namespaces[k]->clone_flag) < 0)
				die(ERR(NAMESPACE_JOIN), errno, e->namespaces[k]->path, e->namespaces[k]->clone_flag);
			close(fds[k]);
		}
	}
	if (user >= 0 && e->become_root) {
		/* Root of the container's user namespace, as the init is when it runs hooks. */
		if (setgroups(0, NULL) < 0 && errno != EPERM)
			die(ERR(USERNS_SETGROUPS), errno, NULL, 0);
		if (setresgid(0, 0, 0) < 0)
			die(ERR(USERNS_SETRESGID_ROOT), errno, NULL, 0);
		if (setresuid(0, 0, 0) < 0)
			die(ERR(USERNS_SETRESUID_ROOT), errno, NULL, 0);
	}
	if (e->cwd[0] && chdir(e->cwd) < 0)
		die(ERR(HOOK_CHDIR), errno, e->cwd, 0);
	if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		die(ERR(CLOSE_RANGE), errno, NULL, 3);
	if (!e->fork)
		enter_exec(e);

	/* A pid or time namespace applies to children only. This process stays to pass on the
	 * signals TypeScript sends and the exit status; its SIGKILL (a timeout) takes the child along. */
	pid_t parent = getpid();
	g_enter_child = fork();
	if (g_enter_child < 0)
		die(ERR(FORK), errno, e->path, 0);
	if (g_enter_child == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			die(ERR(PRCTL), errno, "PR_SET_PDEATHSIG", 0);
		if (getppid() != parent && getppid() != 0)
			_exit(1);
		enter_exec(e);
	}
	/* The child reports its own failure to exec; this process says nothing more. */
	g_report_fd = -1;
	{
		static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = forward_signal;
		sigemptyset(&sa.sa_mask);
		for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
			if (sigaction(sigs[k], &sa, NULL) < 0)
				_exit(255);
	}
	int st;
	while (waitpid(g_enter_child, &st, 0) < 0) {
		if (errno != EINTR)
			_exit(255);
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
