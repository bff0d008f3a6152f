/*
 * tsrun-helper SYNC_FD
 *
 * Reads a launch plan from SYNC_FD and carries it out (docs/architecture.md):
 *   create: clone the container init into its namespaces, map ids, place it in its cgroups,
 *           set up its rootfs and process, report "ready", and leave it blocked on exec.fifo.
 *   exec:   join a running container's namespaces, fork the process, set it up, execve.
 * The parent reports "pid N"; the child's progress and errors reach TypeScript through the
 * parent (one internal socket), so exactly one "error" line is ever sent, and the parent
 * kills and reaps the child whenever it reports one.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct launch {
	const struct plan *p;
	int syncfd;
	int sp_parent, sp_child;      /* internal socket: child -> parent lines, parent -> child "go" */
	int console_child;            /* where the child sends the pty master, or -1 */
	int console_parent;           /* foreground without console socket: where the parent gets it */
	int fifo;                     /* exec.fifo (create), or -1 */
	int status_fd;                /* the startContainer hooks' status fifo (create), or -1 */
	int cg_fds[64];               /* cgroup.procs files, opened on the host side */
	size_t n_cg;
	pid_t pid;
};

pid_t g_host_pid;

/* ---------- parent side ---------- */

/* Rootless exec (CGROUP_PROCS_OPTIONAL): errors that mean "this user may not move the process
 * there" skip that cgroup, as runc does; anything else still fails. */
static bool cgroup_skippable(int err)
{
	return err == EACCES || err == EPERM || err == EROFS || err == ENOENT || err == EBUSY;
}

/* Everything that names a host path is opened before any namespace is joined. */
static void open_host_side(struct launch *l)
{
	const struct plan *p = l->p;

	l->console_child = l->console_parent = l->fifo = l->status_fd = -1;
	if (p->proc_flags & PROCESS_TERMINAL) {
		if (p->console_socket && *p->console_socket) {
			l->console_child = console_connect(p->console_socket);
			if (l->console_child < 0)
				die_errno("connect to console socket %s", p->console_socket);
		} else if (p->flags & GENERAL_FOREGROUND) {
			int pair[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
				die_errno("socketpair");
			l->console_parent = pair[0];
			l->console_child = pair[1];
		} else {
			die("cannot allocate a pseudo-TTY without a console socket when the helper does not stay in the foreground");
		}
	}
	if (p->n_cgroup_procs > sizeof(l->cg_fds) / sizeof(l->cg_fds[0]))
		die("too many cgroup.procs files (%zu)", p->n_cgroup_procs);
	for (size_t i = 0; i < p->n_cgroup_procs; i++) {
		l->cg_fds[i] = open(p->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		if (l->cg_fds[i] < 0 && !(p->cgroup_procs_optional && cgroup_skippable(errno)))
			die_errno("open %s", p->cgroup_procs[i]);
		l->n_cg = i + 1;
	}
	if (p->mode == MODE_CREATE && p->exec_fifo && *p->exec_fifo) {
		/* Created here because TypeScript has no mkfifo; start unlinks it. */
		if (mkfifo(p->exec_fifo, 0600) < 0)
			die_errno("mkfifo %s", p->exec_fifo);
		l->fifo = open(p->exec_fifo, O_RDWR | O_CLOEXEC);
		if (l->fifo < 0) {
			int e = errno;
			unlink(p->exec_fifo);
			die_errnum(e, "open exec fifo %s", p->exec_fifo);
		}
		unlink_on_die_keep(0, p->exec_fifo, l->fifo); /* a failed create leaves no fifo behind */
	}
	if (p->mode == MODE_CREATE && p->start_status && *p->start_status) {
		/* Where the init tells `tsrun start` how its startContainer hooks went. */
		if (mkfifo(p->start_status, 0600) < 0)
			die_errno("mkfifo %s", p->start_status);
		l->status_fd = open(p->start_status, O_RDWR | O_CLOEXEC);
		if (l->status_fd < 0) {
			int e = errno;
			unlink(p->start_status);
			die_errnum(e, "open start status fifo %s", p->start_status);
		}
		unlink_on_die_keep(1, p->start_status, l->status_fd);
	}
	process_oom(p);
	filter_connect_listener(p);
	{
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			die_errno("socketpair");
		l->sp_parent = sp[0];
		l->sp_child = sp[1];
	}
}

/* Parent, right after the clone: the child's end of everything goes away here. */
static void parent_close_child_side(struct launch *l)
{
	close(l->sp_child);
	if (l->console_child >= 0)
		close(l->console_child);
	if (l->fifo >= 0)
		close(l->fifo);
	if (l->status_fd >= 0)
		close(l->status_fd);
}

static void place_in_cgroups(struct launch *l)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)l->pid);
	for (size_t i = 0; i < l->n_cg; i++) {
		ssize_t w;
		if (l->cg_fds[i] < 0)
			continue; /* optional and not ours to use (rootless exec) */
		do
			w = write(l->cg_fds[i], buf, (size_t)n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && !(l->p->cgroup_procs_optional && cgroup_skippable(errno)))
			die_errno("add pid %d to %s", (int)l->pid, l->p->cgroup_procs[i]);
		close(l->cg_fds[i]);
	}
	l->n_cg = 0;
}

static void send_go(struct launch *l)
{
	int32_t pid = l->pid;
	if (write_all(l->sp_parent, &pid, sizeof(pid)) < 0)
		die_errno("signal the container process to go on");
}

/* A hook point: the child waits while TypeScript runs hooks. Passes TypeScript's answer, one
 * line read from the sync socket, on to the child; "abort" (or a closed socket) ends the create. */
static void relay_hook_answer(struct launch *l)
{
	char line[64];
	size_t n = 0;

	for (;;) {
		ssize_t r = read(l->syncfd, line + n, 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_errno("read the answer at a hook point");
		}
		if (r == 0)
			die("tsrun went away at a hook point");
		if (line[n] == '\n')
			break;
		if (++n == sizeof(line) - 1)
			die("overlong answer at a hook point");
	}
	line[n] = '\0';
	if (strcmp(line, "continue") != 0)
		die("create aborted at a hook point (%s)", line);
	if (write_all(l->sp_parent, "continue\n", 9) < 0)
		die_errno("pass the hook answer to the container process");
}

static void describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "status 0x%x", st);
}

/* Relays the child's lines until it closes its end. Returns the last marker seen ("ready" in
 * create mode, "exec" in exec mode). An "error" line is relayed and ends the helper. */
static void relay(struct launch *l, bool *ready, bool *exec_marker)
{
	char buf[65536];
	size_t have = 0;

	*ready = *exec_marker = false;
	for (;;) {
		ssize_t n = read(l->sp_parent, buf + have, sizeof(buf) - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_errno("read from the container process");
		}
		if (n == 0)
			break;
		have += (size_t)n;
		for (;;) {
			char *nl = memchr(buf, '\n', have);
			size_t len;
			if (!nl) {
				if (have < sizeof(buf))
					break;
				nl = buf + have - 1; /* an overlong line: pass it on in pieces */
			}
			len = (size_t)(nl - buf) + 1;
			if (len >= 6 && memcmp(buf, "error ", 6) == 0) {
				report_raw(buf, len);
				if (buf[len - 1] != '\n')
					report_raw("\n", 1);
				/* the child exits by itself; make sure, and reap it */
				kill(l->pid, SIGKILL);
				while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
					;
				g_kill_on_die = 0;
				unlink_on_die_files();
				if (g_die_hook)
					g_die_hook();
				_exit(1);
			} else if (len == 6 && memcmp(buf, "ready\n", 6) == 0) {
				*ready = true;
			} else if (len == 5 && memcmp(buf, "exec\n", 5) == 0) {
				*exec_marker = true;
			} else if (len > 5 && memcmp(buf, "hook ", 5) == 0 && buf[len - 1] == '\n') {
				/* the child waits for the answer: nothing follows this line */
				report_raw(buf, len);
				relay_hook_answer(l);
			} else {
				report_raw(buf, len);
			}
			memmove(buf, buf + len, have - len);
			have -= len;
		}
	}
}

static void die_child_gone(struct launch *l, const char *what)
{
	int st = 0;
	char d[64];
	while (waitpid(l->pid, &st, 0) < 0 && errno == EINTR)
		;
	g_kill_on_die = 0;
	describe_status(st, d, sizeof(d));
	die("%s (%s)", what, d);
}

static void ignore_forwarded_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_IGN);
}

/* After "ready": leave, or stay, proxy the terminal, and report how the process ended. */
static _Noreturn void parent_finish(struct launch *l)
{
	const struct plan *p = l->p;
	int master = -1, st = 0;

	/* from "ready" on, exec.fifo and the status fifo are the container's */
	g_unlink_on_die[0] = g_unlink_on_die[1] = NULL;
	if (!(p->flags & GENERAL_FOREGROUND)) {
		report_raw("ready\n", 6);
		g_kill_on_die = 0;
		_exit(0);
	}
	if (l->console_parent >= 0) {
		master = recv_fd(l->console_parent, NULL, 0);
		if (master < 0)
			die_errno("receive the pty master");
		close(l->console_parent);
	}
	ignore_forwarded_signals();
	report_raw("ready\n", 6);
	if (master >= 0) {
		console_proxy_and_wait(master, l->pid, &st);
	} else {
		while (waitpid(l->pid, &st, 0) < 0) {
			if (errno != EINTR)
				die_errno("wait for the container process");
		}
	}
	g_kill_on_die = 0;
	report_line("exit", "%d", WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255);
	_exit(0);
}

/* ---------- child side ---------- */

static void child_begin(struct launch *l)
{
	int32_t pid;
	int r;

	g_report_fd = l->sp_child;
	g_kill_on_die = 0;
	g_unlink_on_die[0] = g_unlink_on_die[1] = NULL; /* the parent cleans up */
	close(l->syncfd);
	close(l->sp_parent);
	if (l->console_parent >= 0)
		close(l->console_parent);
	for (size_t i = 0; i < l->n_cg; i++)
		close(l->cg_fds[i]);
	/* Die with the parent while being set up (it may be killed at any point). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	r = read_all(l->sp_child, &pid, sizeof(pid));
	if (r < 0)
		_exit(1); /* the parent is gone or gave up; it reports */
	g_host_pid = pid;
}

/* Child: report a hook point and wait for the parent to pass on TypeScript's "continue". */
static void hook_point(struct launch *l, const char *name)
{
	char line[16];
	size_t n = 0;

	debug_stage("init: paused for %s hooks", name);
	report_line("hook", "%s", name);
	for (;;) {
		ssize_t r = read(l->sp_child, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(1); /* the parent gave up; it reports */
		if (line[n] == '\n')
			break;
		if (++n == sizeof(line) - 1)
			_exit(1);
	}
	line[n] = '\0';
	if (strcmp(line, "continue") != 0)
		_exit(1);
	debug_stage("init: %s hooks done", name);
}

static void make_controlling_tty(int slave)
{
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		die_errno("console: make the pty the controlling terminal");
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			die_errno("console: dup2 the pty onto fd %d", fd);
	if (slave > 2)
		close(slave);
}

/* The process part shared by create and exec; returns the resolved executable. */
static const char *child_process_setup(const struct plan *p)
{
	bool retry;
	bool nnp = p->proc_flags & PROCESS_NO_NEW_PRIVILEGES;

	process_rlimits(p);
	if (p->have_umask)
		umask((mode_t)p->umask);
	process_attrs(p);
	process_apparmor(p);
	if (filter_wanted(p)) {
		filter_prepare(p);
		debug_stage("seccomp rules added");
	}
	process_cwd_first(p, &retry);
	process_identity(p, filter_wanted(p) && !nnp);
	/* The kernel clears the parent-death signal when credentials change: arm it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	process_cwd_check(p, retry);
	const char *path = process_resolve(p);
	process_close_fds(p);
	return path;
}

static _Noreturn void child_create(struct launch *l)
{
	const struct plan *p = l->p;
	struct rootfs_ctx rc = {.rootfd = -1};
	int slave = -1;

	child_begin(l);
	child_enter_userns(p);
	if (setsid() < 0)
		die_errno("setsid");
	process_join_keyring(p);
	for (size_t i = 0; i < p->n_namespaces; i++)
		if (p->namespaces[i].type == CLONE_NEWCGROUP && !p->namespaces[i].path && unshare(CLONE_NEWCGROUP) < 0)
			die_errno("unshare cgroup namespace");
	debug_stage("init: namespaces ready");

	rootfs_prepare(p, &rc);
	rootfs_mounts(p, &rc);
	rootfs_devices(p, &rc);
	rootfs_make_cwd(p, &rc);
	debug_stage("init: mounts done");
	/* As runc: prestart and createRuntime hooks once the mounts are in place, then the
	 * createContainer hooks in the container's namespaces, all before pivot_root. */
	if (p->flags & GENERAL_HOOK_CREATE_RUNTIME)
		hook_point(l, "createRuntime");
	if (p->flags & GENERAL_HOOK_CREATE_CONTAINER)
		hook_point(l, "createContainer");
	if (p->proc_flags & PROCESS_TERMINAL) {
		slave = console_setup(rc.rootfd, p, l->console_child, true);
		close(l->console_child);
	}
	rootfs_finish_paths(p, &rc);
	rootfs_pivot(p, &rc);
	debug_stage("init: pivot done");
	if (slave >= 0)
		make_controlling_tty(slave);
	if (p->hostname) {
		if (!plan_has_ns(p, CLONE_NEWUTS))
			die("a hostname needs a UTS namespace");
		if (sethostname(p->hostname, strlen(p->hostname)) < 0)
			die_errno("sethostname");
	}
	if (p->domainname) {
		if (!plan_has_ns(p, CLONE_NEWUTS))
			die("a domainname needs a UTS namespace");
		if (setdomainname(p->domainname, strlen(p->domainname)) < 0)
			die_errno("setdomainname");
	}
	rootfs_after_pivot(p);

	const char *path = child_process_setup(p);
	debug_stage("init: ready");
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	/* If the parent is gone nobody will ever know about us: do not wait on the fifo. */
	if (write_all(l->sp_child, "ready\n", 6) < 0)
		_exit(1);
	close(l->sp_child);
	g_report_fd = -1;

	/* Blocked here until `tsrun start` writes a byte. Nothing of the sync socket is left. */
	if (l->fifo >= 0) {
		char c;
		for (;;) {
			ssize_t n = read(l->fifo, &c, 1);
			if (n == 1)
				break;
			if (n < 0 && errno == EINTR)
				continue;
			_exit(1);
		}
		close(l->fifo);
	}
	if (l->status_fd >= 0 || p->n_start_hooks > 0) {
		/* As runc: the startContainer hooks run after the filter is in place, as the
		 * container's user, and SIGPIPE stays ignored while the init feeds their stdin.
		 * `tsrun start` waits on the status fifo (also for poststart hooks, which must run
		 * once the process is executed): "ok", then EOF when the execve closes it. */
		char why[8192];
		if (filter_wanted(p) && (p->proc_flags & PROCESS_NO_NEW_PRIVILEGES))
			filter_load(p, g_host_pid);
		if (run_start_hooks(p, g_host_pid, why, sizeof(why)) < 0) {
			char msg[sizeof(why) + 8];
			int n = snprintf(msg, sizeof(msg), "error %s\n", why);
			size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
			/* Both are best effort: the init exits either way, and a status fifo without
			 * "ok" already means failure to `tsrun start`. */
			if (l->status_fd >= 0 && write_all(l->status_fd, msg, len) < 0)
				_exit(1);
			if (len > 6 && write_all(2, msg + 6, len - 6) < 0)
				_exit(1);
			_exit(1);
		}
		if (l->status_fd >= 0 && write_all(l->status_fd, "ok\n", 3) < 0)
			_exit(1);
		reset_signals();
		process_exec(p, path); /* the status fifo closes on exec: `tsrun start` sees EOF */
	}
	reset_signals();
	if (filter_wanted(p) && (p->proc_flags & PROCESS_NO_NEW_PRIVILEGES))
		filter_load(p, g_host_pid);
	process_exec(p, path);
}

static _Noreturn void child_exec(struct launch *l)
{
	const struct plan *p = l->p;

	child_begin(l);
	if (setsid() < 0)
		die_errno("setsid");
	process_join_keyring(p);
	if (p->proc_flags & PROCESS_TERMINAL) {
		int slave = console_setup(-1, p, l->console_child, false);
		close(l->console_child);
		make_controlling_tty(slave);
	}
	const char *path = child_process_setup(p);
	debug_stage("exec: ready");
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	report_raw("exec\n", 5); /* then the socket closes on a successful execve */
	reset_signals();
	if (filter_wanted(p) && (p->proc_flags & PROCESS_NO_NEW_PRIVILEGES))
		filter_load(p, g_host_pid);
	process_exec(p, path);
}

/* ---------- modes ---------- */

static _Noreturn void run(struct launch *l)
{
	const struct plan *p = l->p;
	bool create = p->mode == MODE_CREATE;
	bool ready, exec_marker;

	if (create && !plan_has_ns(p, CLONE_NEWNS))
		die("create needs a mount namespace");
	if (!create) {
		for (size_t i = 0; i < p->n_namespaces; i++)
			if (!p->namespaces[i].path)
				die("exec: the %s namespace has no path to join", ns_name(p->namespaces[i].type));
	}
	open_host_side(l);
	if (create)
		idmap_prepare(p); /* needs the host's user and mount namespaces */
	affinity_apply(p, 0, 0); /* exec: inherited by the process until its cgroup is joined */
	join_namespaces(p);
	if (create)
		setup_time_ns(p);
	debug_stage("namespaces joined");

	l->pid = clone_child(create ? plan_new_ns_flags(p) : 0);
	if (l->pid == 0) {
		if (create)
			child_create(l);
		child_exec(l);
	}
	g_kill_on_die = l->pid;
	parent_close_child_side(l);
	idmap_close_all(); /* the init has its own copies of the detached trees */
	if (create)
		write_id_maps(p, l->pid);
	place_in_cgroups(l);
	affinity_apply(p, 1, l->pid); /* exec: once in the container's cgroups (its cpuset) */
	report_line("pid", "%d", (int)l->pid);
	debug_stage("process %d created", (int)l->pid);
	send_go(l);

	relay(l, &ready, &exec_marker);
	if (create ? !ready : !exec_marker)
		die_child_gone(l, create ? "container init exited before it was ready" : "process exited before it was started");
	debug_stage("ready");
	parent_finish(l);
}

/* --hold: what a systemd scope holds until the container's init is in it. systemd refuses to
 * start a scope without a process, and the init must be placed in the scope's cgroups by the
 * helper before it unshares its cgroup namespace, so the scope is made around this process.
 * It exits when its stdin reaches end of file: tsrun closes it, or tsrun is gone. */
static _Noreturn void hold_main(void)
{
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	for (;;) {
		ssize_t n = read(0, &c, 1);
		if (n == 0)
			_exit(0);
		if (n < 0 && errno != EINTR)
			_exit(1);
	}
}

int main(int argc, char **argv)
{
	struct plan plan;
	struct launch l;
	char err[512];
	char *end;
	long fd;
	struct stat st;

	g_t0_ns = now_ns();
	if (argc >= 2 && strcmp(argv[1], "--enter") == 0) {
		ensure_sealed_exe(argc, argv);
		enter_main(argc, argv);
	}
	if (argc == 2 && strcmp(argv[1], "--hold") == 0)
		hold_main();
	if (argc >= 2 && (strcmp(argv[1], "--device-filter") == 0 || strcmp(argv[1], "--device-filter-count") == 0))
		device_filter_main(argc, argv);
	if (argc != 2) {
		fprintf(stderr, "usage: tsrun-helper SYNC_FD\n"
				"       tsrun-helper --enter PID [--cwd DIR] [--cgroup-procs FILE]... -- PATH ARGV0 [ARG]...\n"
				"       tsrun-helper --device-filter CGROUP_DIR < PROGRAM\n"
				"       tsrun-helper --hold   (until stdin is closed: holds a systemd scope)\n");
		return 2;
	}
	fd = strtol(argv[1], &end, 10);
	if (*end || fd < 3 || fd > 65535 || fstat((int)fd, &st) < 0) {
		fprintf(stderr, "tsrun-helper: bad sync fd %s\n", argv[1]);
		return 2;
	}
	g_report_fd = (int)fd;
	/* A closed stdio fd would let one of our own sockets take its number (and reach the
	 * container as its stdin/stdout/stderr): fill any gap with /dev/null. */
	for (int i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) < 0 && errno == EBADF) {
			int nfd = open("/dev/null", O_RDWR);
			if (nfd >= 0 && nfd != i) {
				dup2(nfd, i);
				close(nfd);
			}
		}
	}
	signal(SIGPIPE, SIG_IGN);
	ensure_sealed_exe(argc, argv);
	set_cloexec(g_report_fd, true);

	if (plan_read(g_report_fd, &plan, err, sizeof(err)) < 0)
		die("%s", err);
	g_debug = plan.flags & GENERAL_DEBUG;
	debug_stage("plan read (%s)", plan.mode == MODE_CREATE ? "create" : "exec");
	if (g_debug) {
		/* When t0 was on the wall clock, to place these lines beside TypeScript's (bench/breakdown.ts). */
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		debug_stage("t0 epoch %.3f", (double)wall.tv_sec * 1e3 + (double)wall.tv_nsec / 1e6 - (double)(now_ns() - g_t0_ns) / 1e6);
	}

	memset(&l, 0, sizeof(l));
	l.p = &plan;
	l.syncfd = g_report_fd;
	run(&l);
}
