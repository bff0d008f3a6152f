/*
 * tsrun-helper FD
 *
 * Reads one ToHelper frame from FD (docs/boundary.md) and carries it out:
 *   create: clone the container init into its namespaces, map ids, place it in its cgroups,
 *           set up its rootfs and process, report Ready, and leave it blocked on exec.fifo.
 *   exec:   join a running container's namespaces, fork the process, set it up, execve.
 *   enter:  join a container process's cgroups and namespaces and execve a hook (hooks.c).
 *   device_filter: load and attach a cgroup v2 device program (bpf-devices.c).
 * Events go back on FD (on fd 1 when FD is 0: a plan given on stdin). The parent reports the
 * pid; the child's progress and failures reach TypeScript through the parent (one internal
 * socket), so exactly one Failure is ever sent, and the parent kills and reaps the child
 * whenever it passes one on.
 *
 * tsrun-helper --device-filter-count CGROUP_DIR   (tests)
 * tsrun-helper --echo   (tests: the ToHelper frame on stdin, decoded and encoded again on stdout)
 * tsrun-helper --libseccomp-version   (`tsrun features`: the libseccomp this helper runs with)
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct launch {
	struct run r;
	int syncfd;
	int sp_parent, sp_child;      /* internal socket: child -> parent frames, parent -> child "go" */
	int console_child;            /* where the child sends the pty master, or -1 */
	int console_parent;           /* foreground without console socket: where the parent gets it */
	int fifo;                     /* exec.fifo (create), or -1 */
	int status_fd;                /* the startContainer hooks' status fifo (create), or -1 */
	int pidfd_sock;               /* where a pidfd of the process goes, or -1 */
	int exec_root;                /* exec, container without a mount namespace: its init's root, or -1 */
	int cg_fds[64];               /* cgroup.procs files, opened on the host side */
	size_t n_cg;
	pid_t pid;
};

pid_t g_host_pid;

/* ---------- parent side ---------- */

/* Rootless exec (cgroup_procs_optional): errors that mean "this user may not move the process
 * there" skip that cgroup, as runc does; anything else still fails. */
static bool cgroup_skippable(const struct launch *l, int err)
{
	return l->r.exec && l->r.exec->cgroup_procs_optional &&
	       (err == EACCES || err == EPERM || err == EROFS || err == ENOENT || err == EBUSY);
}

/* Makes a fifo on the host, opened O_RDWR, removed again if the create fails before Ready. */
static int make_fifo(const char *path, size_t slot)
{
	int fd;

	if (mkfifo(path, 0600) < 0)
		die(ERR(MKFIFO), errno, path, 0);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		unlink(path);
		die(ERR(OPEN), e, path, 0);
	}
	unlink_on_die_keep(slot, path, fd);
	return fd;
}

/* Everything that names a host path is opened before any namespace is joined. */
static void open_host_side(struct launch *l)
{
	const Tsrun__Launch *ln = l->r.launch;
	const Tsrun__CreatePlan *c = l->r.create;

	set_stage(STAGE(HOST_SIDE));
	l->console_child = l->console_parent = l->fifo = l->status_fd = l->pidfd_sock = l->exec_root = -1;
	if (l->r.exec && l->r.exec->root[0]) {
		/* The container has no mount namespace to join: the process gets its init's root. */
		l->exec_root = open(l->r.exec->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (l->exec_root < 0)
			die(ERR(EXEC_ROOT_OPEN), errno, l->r.exec->root, 0);
	}
	if (l->r.proc->terminal) {
		if (ln->console_socket[0]) {
			l->console_child = console_connect(ln->console_socket);
			if (l->console_child < 0)
				die(ERR(CONSOLE_SOCKET_CONNECT), errno, ln->console_socket, 0);
		} else if (ln->foreground) {
			int pair[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
				die(ERR(SOCKETPAIR), errno, NULL, 0);
			l->console_parent = pair[0];
			l->console_child = pair[1];
		} else {
			die(ERR(CONSOLE_NO_SOCKET), 0, NULL, 0);
		}
	}
	if (ln->n_cgroup_procs > sizeof(l->cg_fds) / sizeof(l->cg_fds[0]))
		die(ERR(TOO_MANY_CGROUPS), 0, NULL, (int64_t)ln->n_cgroup_procs);
	for (size_t i = 0; i < ln->n_cgroup_procs; i++) {
		l->cg_fds[i] = open(ln->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		if (l->cg_fds[i] < 0 && !cgroup_skippable(l, errno))
			die(ERR(OPEN), errno, ln->cgroup_procs[i], 0);
		l->n_cg = i + 1;
	}
	/* Made here because TypeScript has no mkfifo; start unlinks exec.fifo. */
	if (c && c->exec_fifo[0])
		l->fifo = make_fifo(c->exec_fifo, 0);
	/* Where the init tells `tsrun start` how its startContainer hooks went. */
	if (c && c->start_hooks && c->start_hooks->status_fifo[0])
		l->status_fd = make_fifo(c->start_hooks->status_fifo, 1);
	if (ln->pidfd_socket[0]) {
		l->pidfd_sock = console_connect(ln->pidfd_socket);
		if (l->pidfd_sock < 0)
			die(ERR(PIDFD_SOCKET_CONNECT), errno, ln->pidfd_socket, 0);
	}
	process_oom(l->r.proc);
	filter_connect_listener(ln->seccomp);
	netdev_prepare(c);
	{
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			die(ERR(SOCKETPAIR), errno, NULL, 0);
		l->sp_parent = sp[0];
		l->sp_child = sp[1];
	}
}

/* Parent, right after the clone: the child's end of everything goes away here. */
static void parent_close_child_side(struct launch *l)
{
	close(l->sp_child);
	if (l->exec_root >= 0)
		close(l->exec_root);
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

	set_stage(STAGE(CGROUPS));
	for (size_t i = 0; i < l->n_cg; i++) {
		ssize_t w;
		if (l->cg_fds[i] < 0)
			continue; /* optional and not ours to use (rootless exec) */
		do
			w = write(l->cg_fds[i], buf, (size_t)n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && !cgroup_skippable(l, errno))
			die(ERR(CGROUP_PROCS_WRITE), errno, l->r.launch->cgroup_procs[i], l->pid);
		close(l->cg_fds[i]);
	}
	l->n_cg = 0;
}

/* A pidfd of the process to whoever asked (runc's --pidfd-socket). A failure still kills the
 * process: the caller asked to hold it. */
static void send_pidfd(struct launch *l)
{
	int fd;

	if (l->pidfd_sock < 0)
		return;
	fd = (int)syscall(SYS_pidfd_open, l->pid, 0);
	if (fd < 0)
		die(ERR(PIDFD_OPEN), errno, l->r.launch->pidfd_socket, l->pid);
	if (send_fd(l->pidfd_sock, fd, "pidfd") < 0)
		die(ERR(PIDFD_SEND), errno, l->r.launch->pidfd_socket, l->pid);
	close(fd);
	close(l->pidfd_sock);
	l->pidfd_sock = -1;
}

static void send_go(struct launch *l)
{
	int32_t pid = l->pid;
	if (write_all(l->sp_parent, &pid, sizeof(pid)) < 0)
		die(ERR(INTERNAL_SOCKET), errno, NULL, 0);
}

/* A hook point: the child waits while TypeScript runs hooks. TypeScript's HookAnswer frame is
 * passed on to the child as it is; one that does not proceed (or a closed socket) ends the create. */
static void relay_hook_answer(struct launch *l)
{
	Tsrun__ToHelper *m = frame_read(l->syncfd);
	uint8_t one = 1;

	if (!m)
		die(ERR(HOOK_POINT_ABANDONED), 0, NULL, 0);
	if (m->msg_case != TSRUN__TO_HELPER__MSG_HOOK_ANSWER)
		die(ERR(UNEXPECTED_FRAME), 0, NULL, m->msg_case);
	if (!m->hook_answer->proceed)
		die(ERR(HOOK_POINT_ABORTED), 0, NULL, 0);
	tsrun__to_helper__free_unpacked(m, NULL);
	if (write_all(l->sp_parent, &one, 1) < 0)
		die(ERR(INTERNAL_SOCKET), errno, NULL, 0);
}

/* Reads one frame of the child's (NULL at EOF); *raw holds its bytes, length prefix included. */
static Tsrun__FromHelper *child_frame(struct launch *l, uint8_t **raw, size_t *rawlen)
{
	uint32_t len;
	int r = read_all(l->sp_parent, &len, sizeof(len));

	if (r == -2)
		return NULL;
	if (r < 0 || len > (64u << 20))
		die(ERR(INTERNAL_SOCKET), r < 0 ? errno : EPROTO, NULL, 0);
	*raw = malloc(len + 4u);
	if (!*raw)
		abort();
	memcpy(*raw, &len, 4);
	if (read_all(l->sp_parent, *raw + 4, len) < 0)
		die(ERR(INTERNAL_SOCKET), EPROTO, NULL, 0);
	*rawlen = len + 4u;
	Tsrun__FromHelper *ev = tsrun__from_helper__unpack(NULL, len, *raw + 4);
	if (!ev)
		die(ERR(INTERNAL_SOCKET), EPROTO, NULL, 0);
	return ev;
}

/* Passes the child's frames on until it closes its end; true when it said Ready. A Failure is
 * passed on and ends the helper; at a Hook event the answer comes back the other way. */
static bool relay(struct launch *l)
{
	bool ready = false;

	for (;;) {
		uint8_t *raw = NULL;
		size_t rawlen = 0;
		Tsrun__FromHelper *ev = child_frame(l, &raw, &rawlen);
		if (!ev)
			break;
		switch (ev->event_case) {
		case TSRUN__FROM_HELPER__EVENT_READY:
			ready = true; /* said by the parent itself once it is done */
			break;
		case TSRUN__FROM_HELPER__EVENT_FAILURE:
			if (g_report_fd >= 0)
				write_all(g_report_fd, raw, rawlen);
			/* the child exits by itself; make sure, and reap it */
			kill(l->pid, SIGKILL);
			while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
				;
			g_kill_on_die = 0;
			unlink_on_die_files();
			if (g_die_hook)
				g_die_hook();
			_exit(1);
		case TSRUN__FROM_HELPER__EVENT_MOUNTED:
			host_mount_record(ev->mounted); /* kept here, not passed on */
			break;
		case TSRUN__FROM_HELPER__EVENT_HOOK:
			/* the child waits for the answer: nothing follows this frame */
			if (g_report_fd >= 0)
				write_all(g_report_fd, raw, rawlen);
			relay_hook_answer(l);
			break;
		default:
			if (g_report_fd >= 0)
				write_all(g_report_fd, raw, rawlen);
		}
		tsrun__from_helper__free_unpacked(ev, NULL);
		free(raw);
	}
	return ready;
}

static _Noreturn void die_child_gone(struct launch *l)
{
	int st = 0;
	while (waitpid(l->pid, &st, 0) < 0 && errno == EINTR)
		;
	g_kill_on_die = 0;
	die(l->r.create ? ERR(INIT_EXITED_EARLY) : ERR(PROCESS_EXITED_EARLY), 0, NULL,
	    WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255);
}

static void ignore_forwarded_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_IGN);
}

static void send_simple(Tsrun__FromHelper__EventCase which, int32_t number)
{
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;
	Tsrun__Ready ready = TSRUN__READY__INIT;

	ev.event_case = which;
	if (which == TSRUN__FROM_HELPER__EVENT_READY)
		ev.ready = &ready;
	else if (which == TSRUN__FROM_HELPER__EVENT_PID)
		ev.pid = number;
	else if (which == TSRUN__FROM_HELPER__EVENT_EXITED)
		ev.exited = number;
	send_event(&ev);
}

/* After Ready: leave, or stay, proxy the terminal, and report how the process ended. */
static _Noreturn void parent_finish(struct launch *l)
{
	int master = -1, st = 0;

	/* from Ready on, exec.fifo, the status fifo and mounts in our namespace are the container's */
	g_unlink_on_die[0] = g_unlink_on_die[1] = NULL;
	host_mounts_forget();
	g_die_hook = NULL;
	set_stage(STAGE(WAIT));
	/* Once the process is set up (create: waiting on exec.fifo), as runc sends it. */
	send_pidfd(l);
	if (!l->r.launch->foreground) {
		send_simple(TSRUN__FROM_HELPER__EVENT_READY, 0);
		g_kill_on_die = 0;
		_exit(0);
	}
	if (l->console_parent >= 0) {
		master = recv_fd(l->console_parent, NULL, 0);
		if (master < 0)
			die(ERR(CONSOLE_RECEIVE), errno, NULL, 0);
		close(l->console_parent);
	}
	ignore_forwarded_signals();
	send_simple(TSRUN__FROM_HELPER__EVENT_READY, 0);
	if (master >= 0) {
		console_proxy_and_wait(master, l->pid, &st);
	} else {
		while (waitpid(l->pid, &st, 0) < 0) {
			if (errno != EINTR)
				die(ERR(WAIT), errno, NULL, l->pid);
		}
	}
	g_kill_on_die = 0;
	send_simple(TSRUN__FROM_HELPER__EVENT_EXITED, WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255);
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
	if (l->pidfd_sock >= 0)
		close(l->pidfd_sock);
	for (size_t i = 0; i < l->n_cg; i++)
		if (l->cg_fds[i] >= 0)
			close(l->cg_fds[i]);
	/* Die with the parent while being set up (it may be killed at any point). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die(ERR(PRCTL), errno, "PR_SET_PDEATHSIG", 0);
	r = read_all(l->sp_child, &pid, sizeof(pid));
	if (r < 0)
		_exit(1); /* the parent is gone or gave up; it reports */
	g_host_pid = pid;
}

/* Child: report a hook point and wait for the parent to pass on TypeScript's answer. */
static void hook_point(struct launch *l, Tsrun__HookPoint point)
{
	Tsrun__FromHelper ev = TSRUN__FROM_HELPER__INIT;
	uint8_t answer;

	progress("init: paused for hooks (%d)", (int)point);
	ev.event_case = TSRUN__FROM_HELPER__EVENT_HOOK;
	ev.hook = point;
	send_event(&ev);
	if (read_all(l->sp_child, &answer, 1) < 0 || answer != 1)
		_exit(1); /* the parent gave up; it reports */
	progress("init: hooks done (%d)", (int)point);
}

static void make_controlling_tty(int slave)
{
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		die(ERR(CONSOLE_CONTROLLING_TTY), errno, NULL, 0);
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			die(ERR(CONSOLE_DUP), errno, NULL, fd);
	if (slave > 2)
		close(slave);
}

/* The process part shared by create and exec; returns the resolved executable. Everything
 * that can fail, or needs syscalls a seccomp profile may forbid (the cwd check, the executable
 * lookup, marking fds close-on-exec), comes before the filter. Without no_new_privs the filter
 * is loaded here, as the container's user while CAP_SYS_ADMIN is still held, and only the final
 * capset follows it; with no_new_privs it is loaded right before execve. */
static const char *child_process_setup(const struct run *r)
{
	bool retry;
	const Tsrun__Seccomp *filter = r->launch->seccomp;
	bool filter_here = filter && !r->proc->no_new_privileges;

	set_stage(STAGE(PROCESS));
	process_home((struct run *)r); /* this process's own copy of the run: its env may grow */
	process_replace_null_fds(r->launch);
	process_rlimits(r->proc);
	if (r->proc->umask)
		umask((mode_t)r->proc->umask->value);
	process_attrs(r);
	process_mempolicy(r->launch);
	process_apparmor(r->proc);
	if (filter) {
		filter_prepare(filter);
		progress("seccomp rules added");
	}
	process_cwd_first(r->proc, &retry);
	process_identity(r, filter_here);
	/* The kernel clears the parent-death signal when credentials change: arm it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die(ERR(PRCTL), errno, "PR_SET_PDEATHSIG", 0);
	process_cwd_check(r->proc, retry);
	const char *path = process_resolve(r);
	process_close_fds(r->launch);
	if (filter_here) {
		filter_load(filter, g_host_pid);
		process_identity_finish();
	}
	return path;
}

/* The filter as late as it can be: with no_new_privs it needs no privilege, so right before
 * execve; without, child_process_setup loaded it before the final capset. */
static void late_filter(const struct run *r)
{
	if (r->launch->seccomp && r->proc->no_new_privileges)
		filter_load(r->launch->seccomp, g_host_pid);
}

static _Noreturn void child_create(struct launch *l)
{
	const struct run *r = &l->r;
	const Tsrun__CreatePlan *c = r->create;
	struct rootfs_ctx rc = {.rootfd = -1};
	int slave = -1;

	child_begin(l);
	child_enter_userns(c->launch);
	if (setsid() < 0)
		die(ERR(SETSID), errno, NULL, 0);
	process_join_keyring(r);
	if (launch_new_ns(r->launch, CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		die(ERR(NAMESPACE_UNSHARE), errno, NULL, CLONE_NEWCGROUP);
	progress("init: namespaces ready");

	rootfs_prepare(c, &rc);
	rootfs_mounts(c, &rc);
	rootfs_devices(c, &rc);
	rootfs_make_cwd(c, &rc);
	progress("init: mounts done");
	/* As runc: prestart and createRuntime hooks once the mounts are in place, then the
	 * createContainer hooks in the container's namespaces, all before pivot_root. */
	for (size_t i = 0; i < c->n_hook_points; i++)
		hook_point(l, c->hook_points[i]);
	if (r->proc->terminal) {
		set_stage(STAGE(CONSOLE));
		slave = console_setup(rc.rootfd, r->proc->terminal, l->console_child, true);
		close(l->console_child);
	}
	rootfs_finish_paths(c, &rc);
	rootfs_pivot(c, &rc);
	progress("init: pivot done");
	if (slave >= 0)
		make_controlling_tty(slave);
	if (c->hostname && sethostname(c->hostname->value, strlen(c->hostname->value)) < 0)
		die(ERR(SETHOSTNAME), errno, c->hostname->value, 0);
	if (c->domainname && setdomainname(c->domainname->value, strlen(c->domainname->value)) < 0)
		die(ERR(SETDOMAINNAME), errno, c->domainname->value, 0);
	rootfs_after_pivot(c);

	const char *path = child_process_setup(r);
	progress("init: ready");
	/* The helper exits once create is done: the init must outlive it. */
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		die(ERR(PRCTL), errno, "PR_SET_PDEATHSIG", 0);
	/* If the parent is gone nobody will ever know about us: do not wait on the fifo. */
	send_simple(TSRUN__FROM_HELPER__EVENT_READY, 0);
	close(l->sp_child);
	g_report_fd = -1;

	/* Blocked here until `tsrun start` writes a byte. Nothing of the sync socket is left. */
	if (l->fifo >= 0) {
		char ch;
		for (;;) {
			ssize_t n = read(l->fifo, &ch, 1);
			if (n == 1)
				break;
			if (n < 0 && errno == EINTR)
				continue;
			_exit(1);
		}
		close(l->fifo);
	}
	if (l->status_fd >= 0) {
		/* As runc: the startContainer hooks run after the filter is in place, as the
		 * container's user, and SIGPIPE stays ignored while the init feeds their stdin.
		 * `tsrun start` waits on the status fifo (also for poststart hooks, which must run
		 * once the process is executed): the outcome, then EOF when the execve closes it. */
		late_filter(r);
		run_start_hooks(c->start_hooks, g_host_pid, l->status_fd, r->envp);
		reset_signals();
		process_exec(r, path);
	}
	reset_signals();
	late_filter(r);
	process_exec(r, path);
}

static _Noreturn void child_exec(struct launch *l)
{
	const struct run *r = &l->r;

	child_begin(l);
	child_enter_userns(r->launch);
	if (l->exec_root >= 0) {
		if (fchdir(l->exec_root) < 0 || chroot(".") < 0)
			die(ERR(CHROOT), errno, r->exec->root, 0);
		close(l->exec_root);
	}
	if (setsid() < 0)
		die(ERR(SETSID), errno, NULL, 0);
	process_join_keyring(r);
	if (r->proc->terminal) {
		set_stage(STAGE(CONSOLE));
		int slave = console_setup(-1, r->proc->terminal, l->console_child, false);
		close(l->console_child);
		make_controlling_tty(slave);
	}
	const char *path = child_process_setup(r);
	progress("exec: ready");
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		die(ERR(PRCTL), errno, "PR_SET_PDEATHSIG", 0);
	send_simple(TSRUN__FROM_HELPER__EVENT_READY, 0); /* then the socket closes on a successful execve */
	reset_signals();
	late_filter(r);
	process_exec(r, path);
}

/* ---------- modes ---------- */

static _Noreturn void run(struct launch *l)
{
	const struct run *r = &l->r;
	bool create = r->create != NULL;

	open_host_side(l);
	if (create)
		idmap_prepare(r->create); /* needs the host's user and mount namespaces */
	affinity_apply(r->exec, false, 0); /* exec: inherited by the process until its cgroup is joined */
	join_namespaces(r->launch->namespaces, r->launch->n_namespaces);
	if (create)
		setup_time_ns(r->create);
	progress("namespaces joined");

	l->pid = clone_child(create ? launch_new_ns_flags(r->launch) : 0);
	if (l->pid == 0) {
		if (create)
			child_create(l);
		child_exec(l);
	}
	g_kill_on_die = l->pid;
	if (create && !launch_has_ns(r->launch, CLONE_NEWNS))
		g_die_hook = host_mounts_undo; /* runs once the child is killed and reaped */
	parent_close_child_side(l);
	idmap_close_all(); /* the init has its own copies of the detached trees */
	if (create)
		write_id_maps(r->create, l->pid);
	place_in_cgroups(l);
	affinity_apply(r->exec, true, l->pid); /* exec: once in the container's cgroups (its cpuset) */
	netdev_move(r->create, l->pid);
	send_simple(TSRUN__FROM_HELPER__EVENT_PID, l->pid);
	progress("process %d created", (int)l->pid);
	send_go(l);

	if (!relay(l))
		die_child_gone(l);
	progress("ready");
	parent_finish(l);
}

/* --hold: what a systemd scope holds until the container's init is in it. systemd refuses to
 * start a scope without a process, and the init must be placed in the scope's cgroups by the
 * helper before it unshares its cgroup namespace, so the scope is made around this process.
 * It exits when its stdin reaches end of file: tsrun closes it, or tsrun is gone. */
static _Noreturn void hold_main(void)
{
	char c;

	/* Without it a holder could outlive tsrun: it fails, and tsrun reports the scope's failure. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(1);
	for (;;) {
		ssize_t n = read(0, &c, 1);
		if (n == 0)
			_exit(0);
		if (n < 0 && errno != EINTR)
			_exit(1);
	}
}


/* A closed stdio fd would let one of our own sockets take its number (and reach the container
 * as its stdin/stdout/stderr): fill any gap with /dev/null. */
static void fill_stdio(void)
{
	for (int i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) < 0 && errno == EBADF) {
			int nfd = open("/dev/null", O_RDWR);
			if (nfd >= 0 && nfd != i) {
				dup2(nfd, i);
				close(nfd);
			}
		}
	}
}

static void set_run(struct launch *l, const Tsrun__Launch *ln)
{
	if (!ln || !ln->process || ln->process->n_args == 0)
		die(ERR(PLAN_INCOMPLETE), 0, NULL, 0);
	l->r.launch = ln;
	l->r.proc = ln->process;
	l->r.argv = null_terminated(ln->process->args, ln->process->n_args);
	l->r.envp = null_terminated(ln->process->env, ln->process->n_env);
}

/* The round-trip test's mode: what this helper decodes from a frame is all it would act on. */
static _Noreturn void echo_main(void)
{
	Tsrun__ToHelper *m;
	size_t n;
	uint8_t *buf;
	uint32_t len;

	g_report_fd = 1;
	m = frame_read(0);
	if (!m)
		die(ERR(READ_FRAME), 0, NULL, 0);
	n = tsrun__to_helper__get_packed_size(m);
	buf = malloc(n + 4);
	if (!buf)
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, (int64_t)n);
	len = (uint32_t)n;
	memcpy(buf, &len, 4);
	tsrun__to_helper__pack(m, buf + 4);
	if (write_all(1, buf, n + 4) < 0)
		exit(1);
	exit(0);
}

int main(int argc, char **argv)
{
	struct launch l;
	Tsrun__ToHelper *m;
	char *end;
	long fd;
	struct stat st;

	g_t0_ns = now_ns();
	if (argc == 3 && strcmp(argv[1], "--device-filter-count") == 0)
		device_filter_count_main(argc, argv);
	if (argc == 2 && strcmp(argv[1], "--echo") == 0)
		echo_main();
	if (argc == 2 && strcmp(argv[1], "--libseccomp-version") == 0)
		libseccomp_version_main();
	if (argc == 2 && strcmp(argv[1], "--hold") == 0)
		hold_main();
	if (argc != 2) {
		fprintf(stderr, "usage: tsrun-helper FD   (a ToHelper frame on FD, docs/boundary.md)\n"
				"       tsrun-helper --device-filter-count CGROUP_DIR\n"
				"       tsrun-helper --echo\n"
				"       tsrun-helper --libseccomp-version\n"
				"       tsrun-helper --hold   (until stdin is closed: holds a systemd scope)\n");
		return 2;
	}
	fd = strtol(argv[1], &end, 10);
	if (*end || fd < 0 || fd > 65535 || fd == 1 || fd == 2 || fstat((int)fd, &st) < 0) {
		fprintf(stderr, "tsrun-helper: bad fd %s\n", argv[1]);
		return 2;
	}
	/* Started from the sealed copy (/proc/PID/fd/256), the kernel names it "256": ps, top and
	 * /proc/PID/comm would show that for the helper and the init waiting for start. */
	if (prctl(PR_SET_NAME, "tsrun-helper", 0, 0, 0) < 0) {
		/* only the name that ps shows */
	}
	g_report_fd = fd == 0 ? 1 : (int)fd;
	/* The fds are stdio, the preserved ones (3 .. FD-1) and FD: anything else that reached us
	 * is nobody's to pass on. */
	if (close_range((unsigned)(fd > 2 ? fd : 2) + 1, ~0u, 0) < 0) {
		fprintf(stderr, "tsrun-helper: close_range: %s\n", strerror(errno));
		return 2;
	}
	fill_stdio();
	signal(SIGPIPE, SIG_IGN);
	ensure_sealed_exe(argv);
	if (fd != 0)
		set_cloexec((int)fd, true);

	m = frame_read((int)fd);
	if (!m)
		die(ERR(READ_FRAME), 0, NULL, 0);
	memset(&l, 0, sizeof(l));
	l.syncfd = (int)fd;
	switch (m->msg_case) {
	case TSRUN__TO_HELPER__MSG_ENTER:
		enter_main(m->enter, (int)fd);
	case TSRUN__TO_HELPER__MSG_DEVICE_FILTER:
		device_filter_main(m->device_filter);
	case TSRUN__TO_HELPER__MSG_CREATE:
		set_run(&l, m->create->launch);
		l.r.create = m->create;
		break;
	case TSRUN__TO_HELPER__MSG_EXEC:
		set_run(&l, m->exec->launch);
		l.r.exec = m->exec;
		/* An exec joins the container's namespaces; one without a path would be the host's. */
		for (size_t i = 0; i < l.r.launch->n_namespaces; i++)
			if (!l.r.launch->namespaces[i]->path[0])
				die(ERR(EXEC_NEW_NAMESPACE), 0, NULL, l.r.launch->namespaces[i]->clone_flag);
		break;
	default:
		die(ERR(UNEXPECTED_FRAME), 0, NULL, m->msg_case);
	}
	g_debug = l.r.launch->debug;
	progress("plan read (%s)", l.r.create ? "create" : "exec");
	if (g_debug) {
		/* When t0 was on the wall clock, to place these lines beside TypeScript's (bench/breakdown.ts). */
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		progress("t0 epoch %.3f", (double)wall.tv_sec * 1e3 + (double)wall.tv_nsec / 1e6 - (double)(now_ns() - g_t0_ns) / 1e6);
	}
	run(&l);
}
