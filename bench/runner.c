/*
 * bench-runner: times runtime commands for bench/bench.ts, so that the driver's own start-up
 * and event loop never land inside a measurement.
 *
 *   bench-runner [-n NSFILE] [-o OUTFILE] [-s] CMD ARGS... [--- CMD ARGS...]...
 *       Runs the commands one after another (stdin /dev/null, stdout and stderr to OUTFILE,
 *       appended; /dev/null without -o) and prints one line per command,
 *           step <i> <elapsed ns> <peak RSS KiB (wait4 ru_maxrss)> <exit status> <CPU us>
 *       (CPU: user + system time of the command and the descendants it reaped, from wait4)
 *       then `total <ns>`. It stops at the first command that fails. The pseudo-command
 *       `@wait PIDFILE` waits for the pid written in PIDFILE to end: with -s the runner is a
 *       child subreaper (as a containerd shim is), so a container init whose runtime has
 *       exited is reparented to it and waited for with waitpid.
 *       Exit status 128+signal when killed.
 *
 *   bench-runner [-n NSFILE] [-o OUTFILE] -P JOBS -N COUNT -I PREFIX CMD ARGS... [--- ...]
 *       Pool: COUNT tasks, at most JOBS at a time; task k runs the command sequence with every
 *       "{}" in an argument replaced by PREFIX<k>. Prints `task <k> <ns> <status>` per task and
 *       `total <ns>` (wall time from the first fork to the last reap).
 *
 *   bench-runner -R CMD ARGS...
 *       Reaper: becomes a child subreaper, runs CMD and reaps every orphan reparented to it
 *       (container inits whose runtime exited) until CMD ends; exits with CMD's status.
 *       SIGINT is ignored (the terminal sends it to CMD too, which cleans up); SIGTERM and
 *       SIGHUP are passed on to CMD.
 *
 * -n NSFILE: setns(2) into that mount namespace first (outside every measurement): how crun
 * runs in a namespace where the hybrid cgroup2 mount is hidden.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-runner: %s: %s\n", what, strerror(errno));
	exit(125);
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

static int out_fd = -1, null_fd = -1;

static pid_t spawn(char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(null_fd, 0);
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "bench-runner: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static int wait_for(pid_t pid, struct rusage *ru)
{
	int st;
	while (wait4(pid, &st, 0, ru) < 0) {
		if (errno != EINTR)
			die("wait4");
	}
	return st;
}

/* @wait PIDFILE: the pid must be our child (subreaper) for waitpid; otherwise poll. */
static int wait_pidfile(const char *file)
{
	char buf[32] = {0};
	int fd = open(file, O_RDONLY | O_CLOEXEC), st;
	pid_t pid;
	if (fd < 0)
		return 1;
	if (read(fd, buf, sizeof(buf) - 1) <= 0) {
		close(fd);
		return 1;
	}
	close(fd);
	pid = (pid_t)atoi(buf);
	if (pid <= 0)
		return 1;
	if (waitpid(pid, &st, 0) == pid)
		return 0;
	while (kill(pid, 0) == 0) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* Splits argv at "---" into commands; returns how many. */
static int split(char **argv, char ***cmds, int max)
{
	int n = 0;
	cmds[n++] = argv;
	for (char **a = argv; *a; a++) {
		if (strcmp(*a, "---") == 0) {
			*a = NULL;
			if (n == max) {
				fprintf(stderr, "bench-runner: too many commands\n");
				exit(125);
			}
			cmds[n++] = a + 1;
		}
	}
	return n;
}

static int run_sequence(char ***cmds, int n, bool print)
{
	for (int i = 0; i < n; i++) {
		struct rusage ru = {0};
		unsigned long long t0 = now_ns(), t1;
		int code;
		if (strcmp(cmds[i][0], "@wait") == 0) {
			code = cmds[i][1] ? wait_pidfile(cmds[i][1]) : 1;
		} else {
			code = status_code(wait_for(spawn(cmds[i]), &ru));
		}
		t1 = now_ns();
		if (print)
			printf("step %d %llu %ld %d %lld\n", i, t1 - t0, ru.ru_maxrss, code,
			       (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
		if (code != 0)
			return code;
	}
	return 0;
}

static char **substitute(char **cmd, const char *id)
{
	int n = 0;
	char **out;
	while (cmd[n])
		n++;
	out = calloc((size_t)n + 1, sizeof(*out));
	if (!out)
		die("calloc");
	for (int i = 0; i < n; i++) {
		const char *p = strstr(cmd[i], "{}");
		if (!p) {
			out[i] = cmd[i];
			continue;
		}
		if (asprintf(&out[i], "%.*s%s%s", (int)(p - cmd[i]), cmd[i], id, p + 2) < 0)
			die("asprintf");
	}
	return out;
}

static int pool(char ***cmds, int n, int jobs, int count, const char *prefix)
{
	pid_t *pids = calloc((size_t)count, sizeof(pid_t));
	unsigned long long *start = calloc((size_t)count, sizeof(*start));
	int next = 0, running = 0, failed = 0;
	unsigned long long t0 = now_ns();
	if (!pids || !start)
		die("calloc");
	while (next < count || running > 0) {
		while (running < jobs && next < count) {
			char id[256];
			pid_t pid;
			snprintf(id, sizeof(id), "%s%d", prefix, next);
			start[next] = now_ns();
			pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				char **sub[64];
				for (int i = 0; i < n; i++)
					sub[i] = substitute(cmds[i], id);
				_exit(run_sequence(sub, n, false));
			}
			pids[next++] = pid;
			running++;
		}
		int st;
		pid_t done = waitpid(-1, &st, 0);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			die("waitpid");
		}
		for (int k = 0; k < next; k++) {
			if (pids[k] == done) {
				int code = status_code(st);
				printf("task %d %llu %d\n", k, now_ns() - start[k], code);
				failed += code != 0;
				pids[k] = 0;
				running--;
				break;
			}
		}
	}
	printf("total %llu\n", now_ns() - t0);
	return failed ? 1 : 0;
}

static volatile pid_t reaper_child;

static void forward(int sig)
{
	if (reaper_child > 0)
		kill(reaper_child, sig);
}

static int reaper(char **argv)
{
	struct sigaction sa = {0};
	int main_status = 0;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		die("PR_SET_CHILD_SUBREAPER");
	reaper_child = fork();
	if (reaper_child < 0)
		die("fork");
	if (reaper_child == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "bench-runner: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	signal(SIGINT, SIG_IGN);
	sa.sa_handler = forward;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pid == reaper_child) {
			main_status = status_code(st);
			break;
		}
	}
	return main_status;
}

int main(int argc, char **argv)
{
	const char *ns = NULL, *out = NULL, *prefix = "";
	int opt, jobs = 0, count = 0;
	bool subreaper = false;
	char **cmds[64];
	int n;

	while ((opt = getopt(argc, argv, "+n:o:sP:N:I:R")) != -1) {
		switch (opt) {
		case 'n':
			ns = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 's':
			subreaper = true;
			break;
		case 'P':
			jobs = atoi(optarg);
			break;
		case 'N':
			count = atoi(optarg);
			break;
		case 'I':
			prefix = optarg;
			break;
		case 'R':
			if (optind >= argc)
				return 125;
			return reaper(argv + optind);
		default:
			return 125;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: bench-runner [-n NSFILE] [-o OUTFILE] [-s] CMD... [--- CMD...]\n");
		return 125;
	}
	if (ns) {
		/* setns resets the working directory to the namespace's root: keep ours. */
		char cwd[4096];
		int fd = open(ns, O_RDONLY | O_CLOEXEC);
		if (!getcwd(cwd, sizeof(cwd)))
			die("getcwd");
		if (fd < 0)
			die("open namespace file");
		if (setns(fd, CLONE_NEWNS) < 0)
			die("setns");
		close(fd);
		if (chdir(cwd) < 0)
			die("chdir");
	}
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		die("open /dev/null");
	out_fd = out ? open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : null_fd;
	if (out_fd < 0)
		die("open output file");
	if (subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		die("PR_SET_CHILD_SUBREAPER");
	setvbuf(stdout, NULL, _IOLBF, 0);
	n = split(argv + optind, cmds, 64);
	if (jobs > 0)
		return pool(cmds, n, jobs, count, prefix);
	{
		unsigned long long t0 = now_ns();
		int code = run_sequence(cmds, n, true);
		printf("total %llu\n", now_ns() - t0);
		return code;
	}
}
