/*
 * tsrun's front end: the `tsrun` managers call. A Bun start-up costs about 4 ms and 8 ms of CPU,
 * more than the commands that only read or signal need. So this program does those
 * itself, from ROOT/ID/fast, which create writes with everything decided
 * (src/lifecycle/fast-path.ts): `start` without start hooks (one byte into exec.fifo), `state`
 * (the text for the status it finds), `kill ID [N]` (one signal to the init), `pause` and
 * `resume` (one write to the freezer) and `delete` of a stopped container without poststop hooks
 * (rmdir of the listed cgroup dirs, then the state dir). It also prints `--version` and
 * `features`, texts the build compiles in. Everything else, unchanged, goes to the Bun executable
 * tsrun-main. It decides nothing: whenever a fast path is not certain to do what the TypeScript
 * command would do (an error, an option it does not know, a status the file has nothing for), it
 * execs tsrun-main, which then gives the same answer and the same error text as before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
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

/*
 * The helper re-executes itself from a sealed memfd copy at every start, so that a container
 * that reaches its /proc/PID/exe can never write the binary on disk (CVE-2019-5736): about 1.3 ms
 * of create, run and exec. For those commands the copy is made here instead, while tsrun-main is
 * not yet running: the helper beside tsrun-main, copied into a memfd, sealed against writes,
 * kept open across the exec (at fd 256 or above, out of the caller's range) and named in
 * HELPER_FD_ENV as "FD DEV INO" of the file it copies. tsrun-main spawns the helper from it
 * only if that is the file it would run (src/linux/helper-path.ts); the helper then finds itself
 * sealed and goes on. Any failure here only leaves the copy to the helper.
 */
#define HELPER_FD_ENV "_TSRUN_HELPER_FD"

/* The helper tsrun-main would run when TSRUN_HELPER is unset: the one beside it
 * (src/linux/helper-path.ts looks there first). 0 when the path does not fit. */
static int helper_beside(const char *main_path, char *out, size_t size) {
  const char *slash = strrchr(main_path, '/');
  int n = snprintf(out, size, "%.*s/tsrun-helper", slash ? (int)(slash - main_path) : 1, slash ? main_path : ".");
  return n >= 0 && (size_t)n < size;
}

static void seal_helper(const char *main_path) {
  char path[PATH_MAX];
  if (!helper_beside(main_path, path, sizeof path) || getenv("TSRUN_HELPER") != NULL) return;
  int src = open(path, O_RDONLY | O_CLOEXEC);
  if (src < 0) return;
  struct stat st;
  int mfd = -1, fd = -1;
  if (fstat(src, &st) < 0 || !S_ISREG(st.st_mode) || (mfd = memfd_create("tsrun-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0) goto out;
  for (off_t off = 0; off < st.st_size;) {
    ssize_t w = sendfile(mfd, src, &off, (size_t)(st.st_size - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) goto out;
  }
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) goto out;
  /* Not close-on-exec, for tsrun-main: Bun.spawn (the helper) passes only the fds it names, but
   * node:child_process (hooks of the runtime namespace) passes it on, as it does the caller's
   * fds; it is a read-only copy of a binary they could read anyway. */
  if ((fd = fcntl(mfd, F_DUPFD, 256)) < 0) goto out;
  char val[96];
  snprintf(val, sizeof val, "%d %llu %llu", fd, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  if (setenv(HELPER_FD_ENV, val, 1) < 0 && close(fd) < 0) {
    /* then tsrun-main runs the helper from its file */
  }
out:
  if (mfd >= 0 && close(mfd) < 0) {
    /* nothing left to do with it */
  }
  if (close(src) < 0) {
    /* read only */
  }
}

static int want_sealed_helper;

/*
 * tsrun-main runs with JavaScriptCore's JIT off: a command lives 2-40 ms and runs most of its
 * code once, and the JIT's start-up and compiles cost create about 3 ms of CPU and of wall time
 * (bench/analysis.md). Bun reads BUN_JSC_* options only from the environment, before any
 * JavaScript runs, so the front end sets it; a caller's own value is left as it is. The names it
 * added are listed in ADDED_ENV, and tsrun-main takes them out again (src/cli/frontend-env.ts),
 * so that hooks and the helper inherit the caller's environment, not tsrun's engine settings.
 */
#define ADDED_ENV "_TSRUN_ADDED_ENV"

static void set_engine_options(void) {
  if (unsetenv(ADDED_ENV) < 0 || getenv("BUN_JSC_useJIT") != NULL) return;
  if (setenv("BUN_JSC_useJIT", "0", 1) < 0) return;
  if (setenv(ADDED_ENV, "BUN_JSC_useJIT", 1) < 0 && unsetenv("BUN_JSC_useJIT") < 0) {
    /* then the JIT's setting leaks to hooks: only the engine's speed differs for them */
  }
}

/* The directory of this executable, into self; its length, or -1 with errno set. */
static int self_dir(char self[PATH_MAX]) {
  ssize_t n = readlink("/proc/self/exe", self, PATH_MAX - 1);
  if (n < 0) return -1;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  return slash ? (int)(slash - self) : 0;
}

/* Candidate i of MAIN_CANDIDATES beside this executable's dir; 0 when it does not fit. */
static int main_candidate(const char *self, int dirlen, size_t i, char *out, size_t size) {
  int len = snprintf(out, size, "%.*s/%s", dirlen, self, MAIN_CANDIDATES[i]);
  return len >= 0 && (size_t)len < size;
}

static void exec_main(char **argv) __attribute__((noreturn));
static void exec_main(char **argv) {
  note_caller_fds();
  set_engine_options();
  if (unsetenv(HELPER_FD_ENV) < 0) {
    /* setenv below replaces it, or tsrun-main finds a value naming no file of its */
  }
  char self[PATH_MAX];
  int dirlen = self_dir(self);
  if (dirlen < 0) {
    fprintf(stderr, "tsrun: cannot find tsrun-main: cannot read /proc/self/exe: %s\n", strerror(errno));
    exit(1);
  }
  for (size_t i = 0; i < sizeof MAIN_CANDIDATES / sizeof MAIN_CANDIDATES[0]; i++) {
    char path[PATH_MAX];
    if (!main_candidate(self, dirlen, i, path, sizeof path)) continue;
    if (want_sealed_helper && access(path, X_OK) == 0) seal_helper(path);
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

/* The line after the one at p in a NUL-terminated text, or NULL after the last. */
static char *next_line(char *p) {
  char *nl = strchr(p, '\n');
  return nl ? nl + 1 : NULL;
}

/* ---- ROOT/ID/fast (src/lifecycle/fast-path.ts) ---------------------------------------------- */

#define FAST_MAX (1u << 20)
#define MAX_DELETE_STEPS 64

struct fast {
  char *buf;
  unsigned long rec_size, rec_hash; /* the state.json it was made from: length, CRC-32 */
  const char *pid, *start_time; /* digits, as /proc/PID/stat has them */
  size_t pid_len, start_len;
  int start_ok, delete_ok;
  const char *freezer_kind, *freezer_file; /* "v1"/"v2" and a NUL-terminated path, or NULL */
  const char *freeze_value[2], *freeze_file[2]; /* pause [0] and resume [1]: what to write where, or NULL */
  const char *state[4];                    /* created, running, paused, stopped */
  size_t state_len[4];
  long kill_default, kill_max;
  const char *kill_names; /* "NAME NUMBER" lines, NUL-terminated */
  const char *delete_dir[MAX_DELETE_STEPS]; /* NUL-terminated paths, in order */
  int delete_leaf[MAX_DELETE_STEPS];
  size_t n_delete;
};

enum { ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };
static const char *const STATUS_NAMES[4] = { "created", "running", "paused", "stopped" };

/* A value that must be a plain number as fast-path.ts writes it. */
static long small_number(const char *v, size_t len) {
  const char *digits;
  size_t n;
  if (len == 0 || len > 6) return -1;
  const char *end = parse_digits(v, 6, &digits, &n);
  if (!end || end != v + len) return -1;
  return strtol(digits, NULL, 10);
}

/* A value that names a host path: absolute, no NUL. It is made a C string in place. */
static const char *path_value(char *v, size_t len) {
  if (len == 0 || v[0] != '/' || memchr(v, '\0', len)) return NULL;
  v[len] = '\0'; /* the record's own "\n" */
  return v;
}

/* Reads and checks ROOT/ID/fast; 0 when it cannot be used as it is. */
static int read_fast(const char *path, struct fast *f) {
  memset(f, 0, sizeof *f);
  f->kill_default = f->kill_max = -1;
  f->buf = malloc(FAST_MAX);
  if (!f->buf) return 0;
  ssize_t n = read_small(path, f->buf, FAST_MAX);
  if (n < 0) return 0;
  const char *head = "tsrun-fast 4\n";
  if (strncmp(f->buf, head, strlen(head)) != 0) return 0;
  char *p = f->buf + strlen(head), *end = f->buf + n;
  int have_init = 0, have_record = 0;
  while (p < end) {
    char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp) return 0;
    const char *digits;
    size_t dlen;
    const char *q = parse_digits(sp + 1, 7, &digits, &dlen);
    if (!q || *q != '\n') return 0;
    size_t len = (size_t)strtoul(digits, NULL, 10);
    char *v = (char *)q + 1;
    if ((size_t)(end - v) < len + 1 || v[len] != '\n') return 0;
    size_t nl = (size_t)(sp - p);
#define NAME(lit) (nl == sizeof(lit) - 1 && memcmp(p, lit, nl) == 0)
    if (NAME("record")) {
      char tmp[48];
      int used = 0;
      if (len >= sizeof tmp) return 0;
      memcpy(tmp, v, len);
      tmp[len] = '\0';
      if (sscanf(tmp, "%lu %lx%n", &f->rec_size, &f->rec_hash, &used) != 2 || (size_t)used != len) return 0;
      have_record = 1;
    } else if (NAME("init")) {
      const char *r = parse_digits(v, 10, &f->pid, &f->pid_len);
      if (!r || *r != ' ') return 0;
      r = parse_digits(r + 1, 20, &f->start_time, &f->start_len);
      if (!r || r != v + len) return 0;
      have_init = 1;
    } else if (NAME("start")) {
      if (len != 0) return 0;
      f->start_ok = 1;
    } else if (NAME("freezer")) {
      if (len < 4 || (memcmp(v, "v1 ", 3) != 0 && memcmp(v, "v2 ", 3) != 0)) return 0;
      v[2] = '\0';
      f->freezer_kind = v;
      if (!(f->freezer_file = path_value(v + 3, len - 3))) return 0;
    } else if (NAME("pause") || NAME("resume")) {
      int k = NAME("resume");
      char *sp2 = memchr(v, ' ', len);
      if (!sp2 || sp2 == v || memchr(v, '\0', len)) return 0;
      *sp2 = '\0';
      f->freeze_value[k] = v;
      if (!(f->freeze_file[k] = path_value(sp2 + 1, len - (size_t)(sp2 + 1 - v)))) return 0;
    } else if (nl > 6 && memcmp(p, "state.", 6) == 0) {
      int k = -1;
      for (int i = 0; i < 4; i++)
        if (nl - 6 == strlen(STATUS_NAMES[i]) && memcmp(p + 6, STATUS_NAMES[i], nl - 6) == 0) k = i;
      if (k < 0) return 0;
      f->state[k] = v;
      f->state_len[k] = len;
    } else if (NAME("kill.default")) {
      if ((f->kill_default = small_number(v, len)) < 0) return 0;
    } else if (NAME("kill.max")) {
      if ((f->kill_max = small_number(v, len)) < 0) return 0;
    } else if (NAME("kill.names")) {
      if (memchr(v, '\0', len)) return 0;
      v[len] = '\0';
      f->kill_names = v;
    } else if (NAME("delete")) {
      if (len != 0) return 0;
      f->delete_ok = 1;
    } else if (NAME("delete.leaf") || NAME("delete.parent")) {
      if (!f->delete_ok || f->n_delete == MAX_DELETE_STEPS) return 0;
      f->delete_leaf[f->n_delete] = NAME("delete.leaf");
      if (!(f->delete_dir[f->n_delete] = path_value(v, len))) return 0;
      f->n_delete++;
    } else {
      return 0; /* a record this front end does not know: not certain what it means */
    }
#undef NAME
    p = v + len + 1;
  }
  if (!have_record || !have_init || f->kill_default < 0 || f->kill_max < 0 || !f->kill_names) return 0;
  for (int i = 0; i < 4; i++)
    if (!f->state[i]) return 0;
  return 1;
}

/* zlib's CRC-32, as src/lifecycle/fast-path.ts recordChecksum() (Bun.hash.crc32). */
static uint32_t crc32(const char *buf, size_t n) {
  static uint32_t table[256];
  if (table[1] == 0)
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ (unsigned char)buf[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

/* The state.json the file was made from is still the record: not rewritten since, nor gone. */
static int record_unchanged(const struct fast *f, const char *dir) {
  char path[PATH_MAX + 32];
  static char buf[FAST_MAX];
  snprintf(path, sizeof path, "%s/state.json", dir);
  ssize_t n = read_small(path, buf, sizeof buf);
  if (n < 0 || (unsigned long)n != f->rec_size) return 0;
  return crc32(buf, (size_t)n) == f->rec_hash;
}

/* True when the init the record names is still alive (src/linux/proc.ts isSameLiveProcess()). */
static int init_alive(const struct fast *f) {
  char stat_path[64], stat[1024];
  snprintf(stat_path, sizeof stat_path, "/proc/%.*s/stat", (int)f->pid_len, f->pid);
  if (read_small(stat_path, stat, sizeof stat) < 0) return 0;
  /* The command name (field 2) may hold spaces and parentheses: fields resume after the last ")". */
  char *p = strrchr(stat, ')');
  if (!p || p[1] != ' ') return 0;
  p += 2;
  if (p[0] == 'Z' || p[0] == 'X' || p[0] == '\0') return 0;
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return 0;
    p++;
  }
  return strncmp(p, f->start_time, f->start_len) == 0 &&
         (p[f->start_len] == ' ' || p[f->start_len] == '\n' || p[f->start_len] == '\0');
}

/* As src/lifecycle/state-store.ts computeStatus() for a complete record; -1: not certain. */
static int status_of(const struct fast *f, const char *dir) {
  char path[PATH_MAX + 32], text[4096];
  if (!init_alive(f)) return ST_STOPPED;
  snprintf(path, sizeof path, "%s/exec.fifo", dir);
  if (access(path, F_OK) == 0) return ST_CREATED;
  if (errno != ENOENT) return -1;
  if (!f->freezer_kind) return ST_RUNNING;
  /* src/linux/cgroups/index.ts isFrozen(); a file it cannot read counts as not frozen there too */
  if (read_small(f->freezer_file, text, sizeof text) < 0) return ST_RUNNING;
  if (strcmp(f->freezer_kind, "v1") == 0) {
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\t')) text[--n] = '\0';
    return strcmp(text, "FROZEN") == 0 ? ST_PAUSED : ST_RUNNING;
  }
  for (char *line = text; line && *line; line = next_line(line)) {
    if (strncmp(line, "frozen ", 7) == 0) return (line[7] == '1' && (line[8] == '\n' || line[8] == '\0')) ? ST_PAUSED : ST_RUNNING;
  }
  return ST_RUNNING;
}

static int write_all_out(const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(1, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* ---- the fast-file commands --------------------------------------------------------------------- */

/* start's write failed after the unlink: the errno for tsrun-main to word (src/lifecycle/start.ts). */
#define START_FAILURE_ENV "TSRUN_FRONTEND_WRITE_ERRNO"

static int fast_start(char **argv, const struct fast *f, const char *dir) {
  char path[PATH_MAX + 32];
  if (!f->start_ok || status_of(f, dir) != ST_CREATED) exec_main(argv);
  /* fast is only written with start ok without start hooks; a status fifo means they are there after all. */
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
    if (setenv(START_FAILURE_ENV, errnum, 1) < 0) return 1;
    exec_main(argv);
  }
  if (close(fd) < 0) {
    /* the byte is in the pipe: the init has been released */
  }
  return 0;
}

/* A file or dir of a cgroup filesystem (v1 or v2), as src/linux/cgroups/dir-check.ts asks of
 * every dir a record names: a damaged or edited fast file must not make root write to, or
 * remove, anything else on the host. */
static int cgroupfs_type(const struct statfs *fs) {
  return fs->f_type == CGROUP_SUPER_MAGIC || fs->f_type == CGROUP2_SUPER_MAGIC;
}

static int is_cgroupfs_fd(int fd) {
  struct statfs fs;
  return fstatfs(fd, &fs) == 0 && cgroupfs_type(&fs);
}

/*
 * pause of a running container, resume of a paused one: the one write src/linux/cgroups/index.ts
 * setFrozen() starts with. Done when the freezer then says what it should. Otherwise tsrun-main
 * goes on: before the write (another status, a file it cannot open) as if the front end had not
 * been there; after it (a v1 cgroup still FREEZING, cgroup2's frozen flag not yet set, a failed
 * write) told so in FREEZER_ENV, since the container may be in the new state by then, and it
 * writes again, waits, or words the error (src/lifecycle/pause.ts).
 */
#define FREEZER_ENV "TSRUN_FRONTEND_WROTE_FREEZER"
static int fast_freeze(char **argv, const struct fast *f, const char *dir, int resume) {
  int from = resume ? ST_PAUSED : ST_RUNNING, to = resume ? ST_RUNNING : ST_PAUSED;
  if (!f->freeze_file[resume] || status_of(f, dir) != from) exec_main(argv);
  int fd = open(f->freeze_file[resume], O_WRONLY | O_CLOEXEC);
  if (fd < 0) exec_main(argv);
  if (!is_cgroupfs_fd(fd)) {
    if (close(fd) < 0) { /* nothing was written */ }
    exec_main(argv);
  }
  size_t len = strlen(f->freeze_value[resume]);
  ssize_t n;
  do n = write(fd, f->freeze_value[resume], len);
  while (n < 0 && errno == EINTR);
  if (close(fd) < 0 || n != (ssize_t)len || status_of(f, dir) != to) {
    if (setenv(FREEZER_ENV, resume ? "resume" : "pause", 1) < 0) {
      fprintf(stderr, "tsrun: cannot hand %s over to tsrun-main: %s\n", resume ? "resume" : "pause", strerror(errno));
      return 1;
    }
    exec_main(argv);
  }
  return 0;
}

static int fast_state(char **argv, const struct fast *f, const char *dir) {
  int st = status_of(f, dir);
  if (st < 0 || write_all_out(f->state[st], f->state_len[st]) < 0) exec_main(argv);
  return 0;
}

/* kill ID [N]: one signal to the init, through a pidfd taken while it is still the init. */
static int fast_kill(char **argv, const struct fast *f, const char *dir, const char *sig) {
  long signo = f->kill_default;
  if (sig && sig[0] >= '0' && sig[0] <= '9') {
    signo = small_number(sig, strlen(sig));
    if (signo < 0 || signo > f->kill_max) exec_main(argv);
  } else if (sig) {
    /* A name: in capitals (ASCII only, as anything else is tsrun-main's), looked up in kill.names. */
    char upper[32];
    size_t n = strlen(sig);
    if (n == 0 || n >= sizeof upper) exec_main(argv);
    for (size_t k = 0; k <= n; k++) {
      unsigned char c = (unsigned char)sig[k];
      if (c >= 0x80 || c == ' ' || c == '\n') exec_main(argv);
      upper[k] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    signo = -1;
    for (const char *line = f->kill_names; *line;) {
      const char *nl = strchr(line, '\n');
      size_t llen = nl ? (size_t)(nl - line) : strlen(line);
      if (llen > n + 1 && memcmp(line, upper, n) == 0 && line[n] == ' ') {
        signo = small_number(line + n + 1, llen - n - 1);
        break;
      }
      line += llen + (nl ? 1 : 0);
    }
    if (signo < 0 || signo > f->kill_max) exec_main(argv);
  }
  int st = status_of(f, dir);
  if (st != ST_CREATED && st != ST_RUNNING && st != ST_PAUSED) exec_main(argv);
  int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)strtol(f->pid, NULL, 10), 0);
  if (pidfd < 0) exec_main(argv);
  /* The pid may have been reused between the check and pidfd_open: checked again through it. */
  if (!init_alive(f) || syscall(SYS_pidfd_send_signal, pidfd, (int)signo, NULL, 0) < 0) {
    if (close(pidfd) < 0) {
      /* tsrun-main is next either way */
    }
    exec_main(argv);
  }
  if (close(pidfd) < 0) {
    /* the signal was sent */
  }
  return 0;
}

/* A container cgroup dir of a stopped container: no process and no sub-cgroup left, or leave it to tsrun-main. */
static int leaf_empty(const char *dir) {
  char path[PATH_MAX + 32], procs[64];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  if (read_small(path, procs, sizeof procs) != 0) return 0;
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int ok = 1;
  while ((e = readdir(d)) != NULL)
    if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ok = 0;
  closedir(d);
  return ok;
}

/* The state dir holds files only (state.json last): anything else is tsrun-main's to remove. */
static int remove_state_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int fd = dirfd(d), ok = 1, has_record = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
      ok = 0;
      continue;
    }
    if (strcmp(e->d_name, "state.json") == 0) {
      has_record = 1;
      continue;
    }
    if (ok && unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT) ok = 0;
  }
  if (ok && has_record && unlinkat(fd, "state.json", 0) < 0 && errno != ENOENT) ok = 0;
  closedir(d);
  if (!ok || !has_record) return -1;
  return rmdir(dir);
}

/* delete [--force] ID of a stopped container: the cgroup dirs in removalOrder()'s order, then the state dir. */
static int fast_delete(char **argv, const struct fast *f, const char *dir) {
  if (!f->delete_ok || status_of(f, dir) != ST_STOPPED) exec_main(argv);
  for (size_t i = 0; i < f->n_delete; i++) {
    const char *d = f->delete_dir[i];
    /* One look tells both that the dir is there and that it is a cgroup's. */
    struct statfs fs;
    if (statfs(d, &fs) < 0) {
      if (errno == ENOENT) continue;
      exec_main(argv);
    }
    if (!cgroupfs_type(&fs)) exec_main(argv);
    if (f->delete_leaf[i]) {
      if (!leaf_empty(d) || (rmdir(d) < 0 && errno != ENOENT)) exec_main(argv);
    } else if (rmdir(d) < 0 && errno != ENOENT && errno != EBUSY && errno != ENOTEMPTY && errno != EEXIST) {
      exec_main(argv);
    }
  }
  /* A failure here leaves the rest to tsrun-main, which removes what is left the same way. */
  if (remove_state_dir(dir) < 0) exec_main(argv);
  return 0;
}

/* ---- --version and features --------------------------------------------------------------------- */

/* TSRUN_VERSION, TSRUN_SPEC_VERSION, FEATURES_HEAD and FEATURES_TAIL. */
#include "frontend-text.h"
#ifndef TSRUN_COMMIT
#error "the Makefile passes TSRUN_COMMIT, the commit tsrun-main is built from"
#endif

/* The libseccomp version the helper reports (`tsrun-helper --libseccomp-version`), as tsrun-main
 * asks it (src/linux/helper-path.ts): only stdout passed, the caller's other fds not. 1 when it
 * answered with a version "N.N.N". */
static int helper_libseccomp(const char *helper, char *out, size_t size) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return 0;
  pid_t child = fork();
  if (child == 0) {
    if (dup2(p[1], STDOUT_FILENO) < 0) _exit(127);
    close_range(3, ~0u, 0);
    execl(helper, "tsrun-helper", "--libseccomp-version", (char *)NULL);
    _exit(127);
  }
  if (close(p[1]) < 0 || child < 0) {
    if (close(p[0]) < 0) { /* a failure either way */ }
    return 0;
  }
  size_t len = 0;
  for (;;) {
    ssize_t r = read(p[0], out + len, size - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
    if (len == size - 1) break;
  }
  if (close(p[0]) < 0) { /* read already */ }
  int st;
  while (waitpid(child, &st, 0) < 0)
    if (errno != EINTR) return 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 0;
  while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' ')) len--;
  out[len] = '\0';
  /* N.N.N, as tsrun-main accepts; anything else it words as "unknown" itself. */
  const char *q = out;
  for (int part = 0; part < 3; part++) {
    if (*q < '0' || *q > '9') return 0;
    while (*q >= '0' && *q <= '9') q++;
    if (part < 2 && *q++ != '.') return 0;
  }
  return *q == '\0';
}

/* The helper's libseccomp version, as tsrun-main finds it: the helper beside the tsrun-main
 * exec_main would run (the first of MAIN_CANDIDATES there, as `make install` lays them out too).
 * With TSRUN_HELPER set, or no helper there, or no answer, tsrun-main answers. */
static void libseccomp_or_main(char **argv, char *out, size_t size) {
  char self[PATH_MAX], main_path[PATH_MAX], helper[PATH_MAX];
  int dirlen = self_dir(self);
  if (getenv("TSRUN_HELPER") != NULL || dirlen < 0) exec_main(argv);
  for (size_t i = 0; i < sizeof MAIN_CANDIDATES / sizeof MAIN_CANDIDATES[0]; i++) {
    if (!main_candidate(self, dirlen, i, main_path, sizeof main_path) || access(main_path, X_OK) < 0) continue;
    if (!helper_beside(main_path, helper, sizeof helper) || !helper_libseccomp(helper, out, size)) break;
    return;
  }
  exec_main(argv);
}

/*
 * `tsrun --version` and `tsrun features`: what tsrun-main prints (src/cli/main.ts,
 * src/linux/features.ts), without starting Bun (runc's --version takes about 3.7 ms of CPU,
 * tsrun-main's 8). The texts are compiled in, made by that TypeScript at build time
 * (scripts/gen-frontend-text.ts), with the build's commit; libseccomp is the helper's answer.
 */
static int fast_text(char **argv, int features) {
  char seccomp[64], text[16384];
  libseccomp_or_main(argv, seccomp, sizeof seccomp);
  int n = features ? snprintf(text, sizeof text, "%s\"%s\"%s", FEATURES_HEAD, seccomp, FEATURES_TAIL)
                   : snprintf(text, sizeof text, "tsrun version %s\ncommit: %s\nspec: %s\nlibseccomp: %s\n", TSRUN_VERSION,
                              TSRUN_COMMIT, TSRUN_SPEC_VERSION, seccomp);
  if (n < 0 || (size_t)n >= sizeof text) exec_main(argv);
  if (write_all_out(text, (size_t)n) < 0) exec_main(argv);
  return 0;
}

/* ---- priming the cgroup attach ------------------------------------------------------------------ */

/*
 * The first write to any cgroup.procs file after a quiet spell waits for an RCU grace period
 * (cgroup_threadgroup_rwsem's rcu_sync, global), 5-30 ms here; writes within about one more grace
 * period do not. create, run and exec end with the helper writing the container process's pid
 * into cgroup.procs files, so the wait is started here, before tsrun-main even starts: a
 * throwaway grandchild moves itself into the cgroup2 dir it is already in (a no-op). It holds
 * nothing of this process (every fd closed), nobody waits for it, and the file must be a
 * cgroup2 cgroup.procs. Any failure only loses the head start. This changes no state, and so
 * decides nothing: the commands behave the same without it (bench/analysis.md has the A/B).
 */
static void prime_cgroup_attach(void) {
  char cg[4096], mi[65536], path[PATH_MAX];
  const char *rel = NULL;
  if (read_small("/proc/self/cgroup", cg, sizeof cg) < 0) return;
  for (char *line = cg; line && *line; line = next_line(line)) {
    if (strncmp(line, "0::/", 4) == 0) {
      char *nl = strchr(line, '\n');
      if (nl) *nl = '\0';
      rel = line + 3;
      break;
    }
  }
  if (!rel || read_small("/proc/self/mountinfo", mi, sizeof mi) < 0) return;
  /* The cgroup2 mount whose root is "/" (the host's, as /proc/self/cgroup's paths are relative to). */
  path[0] = '\0';
  for (char *line = mi; line && *line; line = next_line(line)) {
    char root[16], mnt[PATH_MAX], *dash = strstr(line, " - ");
    char *nl = strchr(line, '\n');
    if (!dash || (nl && dash > nl) || strncmp(dash + 3, "cgroup2 ", 8) != 0) continue;
    if (sscanf(line, "%*u %*u %*s %15s %4095s", root, mnt) != 2 || strcmp(root, "/") != 0 || strchr(mnt, '\\')) continue;
    int n = snprintf(path, sizeof path, "%s%s/cgroup.procs", mnt, strcmp(rel, "/") == 0 ? "" : rel);
    if (n < 0 || (size_t)n >= sizeof path) path[0] = '\0';
    break;
  }
  if (!path[0]) return;
  pid_t child = fork();
  if (child < 0) return;
  if (child == 0) {
    if (fork() == 0) {
      struct statfs fs;
      close_range(0, ~0u, 0);
      int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0 && fstatfs(fd, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC && write(fd, "0", 1) < 0) _exit(1);
      _exit(0);
    }
    _exit(0);
  }
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
    ;
}

/* Whether this is create, run or exec, the commands that end with a process placed in cgroups.
 * Any operand that spells one counts (global options before it are tsrun-main's to parse): a
 * wrong guess, as for a container named "run", costs one throwaway process and changes nothing. */
static int places_a_process(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "create") == 0 || strcmp(argv[i], "run") == 0 || strcmp(argv[i], "exec") == 0) return 1;
  return 0;
}

/* As src/log.ts: the log file is made before the command runs (a failure is tsrun-main's to report). */
static int make_log_file(const char *log) {
  if (!log) return 1;
  int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  return fd >= 0 && close(fd) == 0;
}

int main(int argc, char **argv) {
  const char *root = NULL, *log = NULL, *log_format = NULL;
  int i = 1;
  /* Only this program says what it did before handing over: a caller's value would excuse an
   * error (pause, resume) or make tsrun-main report a start that was never tried. */
  if (unsetenv(FREEZER_ENV) < 0 || unsetenv(START_FAILURE_ENV) < 0) exec_main(argv);
  if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) return fast_text(argv, 0);
  if (places_a_process(argc, argv)) {
    want_sealed_helper = 1;
    /* A user without privileges has no cgroup.procs of its own to prime with, most of the time. */
    if (geteuid() == 0) prime_cgroup_attach();
  }
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!take_option(argc, argv, &i, "--root", &root) && !take_option(argc, argv, &i, "--log-format", &log_format) &&
        !take_option(argc, argv, &i, "--log", &log))
      exec_main(argv);
  }
  if (i >= argc) exec_main(argv);
  const char *cmd = argv[i++];
  if (log_format && strcmp(log_format, "json") != 0 && strcmp(log_format, "text") != 0) exec_main(argv);
  if (strcmp(cmd, "features") == 0) {
    /* No root, no container: the global options only set where a log would go. */
    if (i != argc || !make_log_file(log)) exec_main(argv);
    return fast_text(argv, 1);
  }

  const char *id = NULL, *sig = NULL;
  /* Exactly the forms below; any other option or operand is tsrun-main's. */
  if (strcmp(cmd, "start") == 0 || strcmp(cmd, "state") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
    if (argc - i != 1) exec_main(argv);
    id = argv[i];
  } else if (strcmp(cmd, "kill") == 0) {
    if (argc - i != 1 && argc - i != 2) exec_main(argv);
    id = argv[i];
    if (argc - i == 2) sig = argv[i + 1];
  } else if (strcmp(cmd, "delete") == 0) {
    if (argc - i == 2 && (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)) i++;
    if (argc - i != 1) exec_main(argv);
    id = argv[i];
  } else {
    exec_main(argv);
  }
  if (!valid_id(id)) exec_main(argv);
  if (!root) {
    /* Anyone else's default root is src/linux/rootless.ts's to choose. */
    if (geteuid() != 0 || getenv("XDG_RUNTIME_DIR") != NULL) exec_main(argv);
    root = "/run/tsrun";
  }
  if (!plain_root(root)) exec_main(argv);

  char dir[PATH_MAX + 8], path[PATH_MAX + 32];
  int len = snprintf(dir, sizeof dir, "%s/%s", root, id);
  if (len < 0 || (size_t)len >= PATH_MAX) exec_main(argv);

  if (!make_log_file(log)) exec_main(argv);

  struct fast f;
  snprintf(path, sizeof path, "%s/fast", dir);
  if (!read_fast(path, &f) || !record_unchanged(&f, dir)) exec_main(argv);
  if (strcmp(cmd, "start") == 0) return fast_start(argv, &f, dir);
  if (strcmp(cmd, "state") == 0) return fast_state(argv, &f, dir);
  if (strcmp(cmd, "kill") == 0) return fast_kill(argv, &f, dir, sig);
  if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) return fast_freeze(argv, &f, dir, strcmp(cmd, "resume") == 0);
  return fast_delete(argv, &f, dir);
}
