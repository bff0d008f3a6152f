/* The container's pty: created from the container's own devpts (its /dev/ptmx), the master
 * sent over the console socket (SCM_RIGHTS, payload: the slave's path), the slave bound on
 * /dev/console and made the controlling terminal. In foreground mode without a console
 * socket the helper's parent receives the master and proxies it to its own stdio. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Connects to a unix socket on the host; long paths go through an O_PATH fd of the directory. */
int console_connect(const char *path)
{
	struct sockaddr_un sa;
	int s, dirfd = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) < sizeof(sa.sun_path)) {
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	} else {
		char dir[4096];
		const char *base = strrchr(path, '/');
		if (!base || (size_t)(base - path) >= sizeof(dir)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(dir, path, (size_t)(base - path));
		dir[base - path] = '\0';
		dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return -1;
		if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, base + 1) >=
		    sizeof(sa.sun_path)) {
			close(dirfd);
			errno = ENAMETOOLONG;
			return -1;
		}
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(s);
		if (dirfd >= 0)
			close(dirfd);
		errno = e;
		return -1;
	}
	if (dirfd >= 0)
		close(dirfd);
	return s;
}

/*
 * Opens a pty in the container's devpts, sends the master over console_sock, and returns the
 * slave fd (CLOEXEC). rootfd: the container root (before pivot_root) or -1 for "/" (exec mode,
 * after setns into the container's mount namespace). bind_console: bind the slave on
 * /dev/console (create mode).
 */
int console_setup(int rootfd, const Tsrun__Terminal *t, int console_sock, bool bind_console)
{
	int root = rootfd, master, slave, unlock = 0;
	unsigned int ptn;
	char slave_path[64];

	if (root < 0) {
		root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root < 0)
			die(ERR(CONSOLE_OPEN), errno, "/", 0);
	}
	master = open_in_root(root, "/dev/ptmx", O_RDWR | O_NOCTTY, 0);
	if (master < 0)
		die(ERR(CONSOLE_OPEN_PTMX), errno, "/dev/ptmx", 0);
	if (ioctl(master, TIOCGPTN, &ptn) < 0)
		die(ERR(CONSOLE_NOT_PTMX), errno, "/dev/ptmx", 0);
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		die(ERR(CONSOLE_UNLOCKPT), errno, NULL, 0);
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		die(ERR(CONSOLE_OPEN_SLAVE), errno, NULL, 0);
	snprintf(slave_path, sizeof(slave_path), "/dev/pts/%u", ptn);
	/* As runc: the process's user owns its terminal (devpts gave it to us); the group (tty,
	 * from the devpts gid= option) and the mode (its mode= option) stay as devpts made them. */
	if (fchown(slave, t->uid, (gid_t)-1) < 0)
		die(ERR(CONSOLE_CHOWN), errno, slave_path, t->uid);
	if (t->height || t->width) {
		struct winsize ws = {.ws_row = (unsigned short)t->height, .ws_col = (unsigned short)t->width};
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			die(ERR(CONSOLE_WINSIZE), errno, NULL, 0);
	}
	if (bind_console) {
		/* The slave is bound over /dev/console; the file under it is made (replacing what
		 * is there) only on a /dev tmpfs of ours, made if missing on the rootfs's own
		 * filesystem, and never made or removed on another mount (the host's /dev). */
		char src[64], dst[64];
		int dev = mkdir_in_root(root, "/dev", false), target;
		enum node_place place;
		if (dev < 0)
			die(ERR(CONSOLE_DEV), errno, "/dev", 0);
		place = node_place(dev);
		if (place == PLACE_OWN_TMPFS && unlinkat(dev, "console", 0) < 0 && errno != ENOENT)
			die(ERR(CONSOLE_DEV_CONSOLE), errno, "remove", 0);
		target = openat(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (target < 0 && errno == ENOENT && place != PLACE_OTHER_MOUNT) {
			int f = openat(dev, "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (f < 0)
				die(ERR(CONSOLE_DEV_CONSOLE), errno, "create", 0);
			close(f);
			target = openat(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (target < 0 && errno == ENOENT && place == PLACE_OTHER_MOUNT) {
			warn_event(WARN(CONSOLE_NOT_MADE), "/dev/console", 0);
		} else {
			if (target < 0)
				die(ERR(CONSOLE_DEV_CONSOLE), errno, "open", 0);
			snprintf(src, sizeof(src), "/proc/self/fd/%d", slave);
			snprintf(dst, sizeof(dst), "/proc/self/fd/%d", target);
			if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
				die(ERR(CONSOLE_BIND), errno, slave_path, 0);
			note_host_mount(target);
			close(target);
		}
		close(dev);
	}
	if (send_fd(console_sock, master, slave_path) < 0)
		die(ERR(CONSOLE_SEND), errno, NULL, 0);
	close(master);
	if (root != rootfd)
		close(root);
	return slave;
}

/* ---- foreground proxy (helper parent) ---- */

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved) {
		tcsetattr(0, TCSANOW, &saved_tio);
		tio_saved = false;
	}
}

static void copy_winsize(int master)
{
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		ioctl(master, TIOCSWINSZ, &ws);
}

static bool pump(int from, int to)
{
	char buf[16384];
	ssize_t n;
	do
		n = read(from, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false;
	return write_all(to, buf, (size_t)n) == 0;
}

/* Proxies stdin -> master and master -> stdout until the child has exited and the master is
 * drained; forwards window size changes; puts the caller's terminal in raw mode meanwhile. */
void console_proxy_and_wait(int master, pid_t child, int *status)
{
	sigset_t set;
	int sfd;
	bool in_open = true, master_open = true, child_done = false;
	bool stdin_tty = isatty(0);

	if (stdin_tty && tcgetattr(0, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		tio_saved = true;
		g_die_hook = restore_tty;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
		copy_winsize(master);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die(ERR(CONSOLE_PROXY), errno, "signalfd", 0);

	for (;;) {
		struct pollfd pf[3];
		int n = 0, in_i = -1, m_i = -1, s_i;
		if (!child_done && waitpid(child, status, WNOHANG) == child)
			child_done = true;
		if (child_done && !master_open)
			break;
		if (in_open) {
			pf[n] = (struct pollfd){.fd = 0, .events = POLLIN};
			in_i = n++;
		}
		if (master_open) {
			pf[n] = (struct pollfd){.fd = master, .events = POLLIN};
			m_i = n++;
		}
		pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
		s_i = n++;
		/* Once the process is gone, drain what the pty still holds, then stop (another process
		 * of the container may keep the slave open forever). */
		int r = poll(pf, (nfds_t)n, child_done ? 100 : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die(ERR(CONSOLE_PROXY), errno, "poll", 0);
		}
		if (r == 0 && child_done)
			break;
		if (in_i >= 0 && (pf[in_i].revents & (POLLIN | POLLHUP | POLLERR)))
			if (!pump(0, master))
				in_open = false;
		if (m_i >= 0 && (pf[m_i].revents & (POLLIN | POLLHUP | POLLERR)))
			if (!pump(master, 1))
				master_open = false;
		if (pf[s_i].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGWINCH && stdin_tty)
					copy_winsize(master);
		}
	}
	if (!child_done)
		while (waitpid(child, status, 0) < 0 && errno == EINTR)
			;
	restore_tty();
	close(sfd);
	close(master);
}
