/*
 * tsrun's front end: the `tsrun` managers call. A Bun start-up costs about 8 ms of CPU, more
 * than `start` of a container without start hooks needs (one byte into exec.fifo). So this
 * program does that one case itself, from ROOT/ID/start.fast, which create writes only when
 * start has nothing else to do (src/lifecycle/create.ts), and hands everything else, unchanged,
 * to the Bun executable tsrun-main. It decides nothing: whenever the fast path is not certain to
 * do what the TypeScript start would do, it execs tsrun-main, which then gives the same answer
 * and the same error text as before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_ID_LENGTH 1024

/* Never from the environment: tsrun runs as root for whoever can call it. */
static const char *const MAIN_CANDIDATES[] = { "tsrun-main", "../libexec/tsrun/tsrun-main" };

/*
 * --preserve-fds N passes fds 3 .. 3+N-1 to the container. Once tsrun-main runs, the Bun
 * runtime's own fds (an eventpoll, an eventfd, the --log file) take the lowest free numbers, so
 * only here can the caller's fds be told from tsrun's: the fds that stay open across the exec
 * (not close-on-exec) are listed in CALLER_FDS_ENV as ranges ("3-5,8"), which tsrun-main reads
 * and removes from its environment (src/linux/caller-fds.ts).
 */
#define CALLER_FDS_ENV "_TSRUN_CALLER_FDS"

static void note_caller_fds(void) {
  char list[8192];
  size_t len = 0;
  int first = -1, last = -1;
  if (unsetenv(CALLER_FDS_ENV) < 0) return;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return; /* tsrun-main then refuses --preserve-fds: it cannot know */
  /* /proc lists them in increasing order, so runs of numbers become ranges. */
  int fds[4096];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end != '\0' || e->d_name[0] == '\0' || fd < 3 || fd == dirfd(d)) continue;
    int flags = fcntl((int)fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC)) continue;
    if (n == sizeof fds / sizeof fds[0]) break; /* the lowest are in */
    fds[n++] = (int)fd;
  }
  closedir(d);
  list[0] = '\0';
  for (size_t i = 0; i <= n; i++) {
    if (i < n && first >= 0 && fds[i] == last + 1) {
      last = fds[i];
      continue;
    }
    if (first >= 0) {
      int w = first == last ? snprintf(list + len, sizeof list - len, "%s%d", len ? "," : "", first)
                            : snprintf(list + len, sizeof list - len, "%s%d-%d", len ? "," : "", first, last);
      /* Too many to list: those left out count as not passed, which only ever refuses. */
      if (w < 0 || (size_t)w >= sizeof list - len) break;
      len += (size_t)w;
    }
    if (i < n) first = last = fds[i];
  }
  if (setenv(CALLER_FDS_ENV, list, 1) < 0) {
    /* then tsrun-main refuses --preserve-fds */
  }
}

static void exec_main(char **argv) __attribute__((noreturn));
static void exec_main(char **argv) {
  note_caller_fds();
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    fprintf(stderr, "tsrun: cannot find tsrun-main: cannot read /proc/self/exe: %s\n", strerror(errno));
    exit(1);
  }
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  size_t dirlen = slash ? (size_t)(slash - self) : 0;
  for (size_t i = 0; i < sizeof MAIN_CANDIDATES / sizeof MAIN_CANDIDATES[0]; i++) {
    char path[PATH_MAX];
    int len = snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, self, MAIN_CANDIDATES[i]);
    if (len < 0 || (size_t)len >= sizeof path) continue;
    execv(path, argv);
    if (errno != ENOENT && errno != ENOTDIR) {
      fprintf(stderr, "tsrun: cannot run %s: %s\n", path, strerror(errno));
      exit(1);
    }
  }
  fprintf(stderr, "tsrun: cannot find tsrun-main next to %s or in ../libexec/tsrun\n", self);
  exit(1);
}

static int valid_id(const char *id) {
  size_t len = strlen(id);
  if (len == 0 || len > MAX_ID_LENGTH || strcmp(id, ".") == 0 || strcmp(id, "..") == 0) return 0;
  /* A leading '-' would be an option to tsrun-main's parser. */
  if (id[0] == '-') return 0;
  for (const char *p = id; *p; p++) {
    char c = *p;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '+' ||
          c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

/* TypeScript's path.join() folds "." and ".." lexically, the kernel after following symlinks:
 * only a root without them names the same directory both ways. */
static int plain_root(const char *root) {
  if (root[0] == '\0') return 0;
  for (const char *p = root; *p;) {
    const char *end = strchrnul(p, '/');
    size_t len = (size_t)(end - p);
    if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
    p = *end ? end + 1 : end;
  }
  return 1;
}

/*
 * Whether argv[*i] is option `name` (then its value is in *value and *i is past it). A value
 * that src/cli/args.ts might read otherwise than this (empty, or like an option) is left to it.
 */
static int take_option(int argc, char **argv, int *i, const char *name, const char **value) {
  size_t nl = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, nl) != 0 || (a[nl] != '=' && a[nl] != '\0')) return 0;
  const char *v;
  if (a[nl] == '=') v = a + nl + 1;
  else if (*i + 1 < argc) v = argv[++*i];
  else exec_main(argv);
  if (*value != NULL || v[0] == '\0' || v[0] == '-') exec_main(argv);
  *value = v;
  return 1;
}

/* Reads the whole small file at path into buf (NUL-terminated); -1 on any error or if too long. */
static ssize_t read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t got = 0;
  for (;;) {
    if (got == size - 1) {
      close(fd);
      return -1;
    }
    ssize_t n = read(fd, buf + got, size - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return -1;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  if (close(fd) < 0) return -1;
  buf[got] = '\0';
  return (ssize_t)got;
}

/* A decimal number as create writes it: digits only, no leading zero, at most max_len digits. */
static const char *parse_digits(const char *p, size_t max_len, const char **digits, size_t *len) {
  const char *s = p;
  while (*p >= '0' && *p <= '9') p++;
  *len = (size_t)(p - s);
  if (*len == 0 || *len > max_len || (s[0] == '0' && *len > 1)) return NULL;
  *digits = s;
  return p;
}

/*
 * start.fast: "1 PID STARTTIME\n". True when that process is still the container's init and
 * alive (src/linux/proc.ts isSameLiveProcess()).
 */
static int init_alive(const char *fast_path) {
  char buf[128];
  if (read_small(fast_path, buf, sizeof buf) < 0) return 0;
  if (strncmp(buf, "1 ", 2) != 0) return 0;
  const char *pid, *start;
  size_t pid_len, start_len;
  const char *p = parse_digits(buf + 2, 10, &pid, &pid_len);
  if (!p || *p != ' ') return 0;
  p = parse_digits(p + 1, 20, &start, &start_len);
  if (!p || strcmp(p, "\n") != 0) return 0;
  if (pid[0] == '0') return 0;

  char stat_path[64], stat[1024];
  snprintf(stat_path, sizeof stat_path, "/proc/%.*s/stat", (int)pid_len, pid);
  if (read_small(stat_path, stat, sizeof stat) < 0) return 0;
  /* The command name (field 2) may hold spaces and parentheses: fields resume after the last ")". */
  char *f = strrchr(stat, ')');
  if (!f || f[1] != ' ') return 0;
  f += 2;
  if (f[0] == 'Z' || f[0] == 'X' || f[0] == '\0') return 0;
  for (int field = 3; field < 22; field++) {
    f = strchr(f, ' ');
    if (!f) return 0;
    f++;
  }
  return strncmp(f, start, start_len) == 0 && (f[start_len] == ' ' || f[start_len] == '\n' || f[start_len] == '\0');
}

int main(int argc, char **argv) {
  const char *root = NULL, *log = NULL, *log_format = NULL;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!take_option(argc, argv, &i, "--root", &root) && !take_option(argc, argv, &i, "--log-format", &log_format) &&
        !take_option(argc, argv, &i, "--log", &log))
      exec_main(argv);
  }
  if (argc - i != 2 || strcmp(argv[i], "start") != 0 || !valid_id(argv[i + 1])) exec_main(argv);
  const char *id = argv[i + 1];
  if (log_format && strcmp(log_format, "json") != 0 && strcmp(log_format, "text") != 0) exec_main(argv);
  if (!root) {
    /* Anyone else's default root is src/linux/rootless.ts's to choose. */
    if (geteuid() != 0 || getenv("XDG_RUNTIME_DIR") != NULL) exec_main(argv);
    root = "/run/tsrun";
  }
  if (!plain_root(root)) exec_main(argv);

  char dir[PATH_MAX + 8], path[PATH_MAX + 32];
  int len = snprintf(dir, sizeof dir, "%s/%s", root, id);
  if (len < 0 || (size_t)len >= PATH_MAX) exec_main(argv);

  /* As src/log.ts: the log file is made before the command runs (a failure is tsrun-main's to report). */
  int log_fd = -1;
  if (log && (log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) exec_main(argv);
  if (log_fd >= 0 && close(log_fd) < 0) exec_main(argv);

  snprintf(path, sizeof path, "%s/start.fast", dir);
  if (!init_alive(path)) exec_main(argv);
  /* start.fast is only written without start hooks; a status fifo means they are there after all. */
  snprintf(path, sizeof path, "%s/start-status.fifo", dir);
  if (access(path, F_OK) == 0 || errno != ENOENT) exec_main(argv);

  snprintf(path, sizeof path, "%s/exec.fifo", dir);
  /* O_NONBLOCK: with no reader (the init is gone) this fails at once instead of hanging. */
  int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) exec_main(argv);
  /* The unlink decides which of two concurrent starts goes on. */
  if (unlink(path) < 0) {
    if (close(fd) < 0) {
      /* the fd is gone either way, and tsrun-main starts afresh */
    }
    exec_main(argv);
  }
  /* From here there is no way back to tsrun-main: a reader gone now is EPIPE, not a signal. */
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    /* then a vanished reader kills this process, which still exits non-zero */
  }
  ssize_t n;
  do n = write(fd, "0", 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) {
    /* tsrun-main words it (src/lifecycle/start.ts) and logs it as every error is logged. */
    char errnum[16];
    snprintf(errnum, sizeof errnum, "%d", n < 0 ? errno : EIO);
    if (setenv("TSRUN_FRONTEND_WRITE_ERRNO", errnum, 1) < 0) return 1;
    exec_main(argv);
  }
  if (close(fd) < 0) {
    /* the byte is in the pipe: the init has been released */
  }
  return 0;
}
