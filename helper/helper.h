/* tsrun-helper: shared declarations. See docs/architecture.md and docs/plan-format.md. */
#ifndef TSRUN_HELPER_H
#define TSRUN_HELPER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PLAN_VERSION 1
#define PLAN_MAX_SIZE (64u * 1024u * 1024u)

enum plan_tag {
	TAG_GENERAL = 1,
	TAG_NAMESPACE = 2,
	TAG_UID_MAPPING = 3,
	TAG_GID_MAPPING = 4,
	TAG_TIME_OFFSET = 5,
	TAG_CGROUP_PROCS = 6,
	TAG_ROOTFS = 7,
	TAG_MOUNT = 8,
	TAG_DEVICE = 9,
	TAG_SYMLINK = 10,
	TAG_MASKED_PATH = 11,
	TAG_READONLY_PATH = 12,
	TAG_SYSCTL = 13,
	TAG_HOSTNAME = 14,
	TAG_DOMAINNAME = 15,
	TAG_PROCESS = 16,
	TAG_ARG = 17,
	TAG_ENV = 18,
	TAG_ADDITIONAL_GID = 19,
	TAG_UMASK = 20,
	TAG_RLIMIT = 21,
	TAG_CAPABILITIES = 22,
	TAG_OOM_SCORE_ADJ = 23,
	TAG_CONSOLE_SOCKET = 24,
	TAG_EXEC_FIFO = 25,
	TAG_SECCOMP = 26,
	TAG_SECCOMP_ARCH = 27,
	TAG_SECCOMP_RULE = 28,
	TAG_START_HOOKS = 29,
	TAG_START_HOOK = 30,
	TAG_SESSION_KEYRING = 31,
	TAG_MAX = 31,
	/* process attributes (helper/attrs.c) */
	TAG_PERSONALITY = 40,
	TAG_IOPRIO = 41,
	TAG_SCHEDULER = 42,
	TAG_CPU_AFFINITY = 43,
	TAG_APPARMOR_PROFILE = 44,
	/* idmapped mounts (helper/idmap.c) */
	TAG_MOUNT_IDMAP = 45,
	/* rootless (ns.c, main.c) */
	TAG_UID_MAP_HELPER = 50,
	TAG_GID_MAP_HELPER = 51,
	TAG_CGROUP_PROCS_OPTIONAL = 52,
};

#define GENERAL_FOREGROUND 1u
#define GENERAL_DEBUG 2u
#define GENERAL_NO_PIVOT 4u
#define GENERAL_READONLY_ROOT 8u
#define GENERAL_HOOK_CREATE_RUNTIME 16u   /* pause with "hook createRuntime" before pivot_root */
#define GENERAL_HOOK_CREATE_CONTAINER 32u /* pause with "hook createContainer" before pivot_root */
#define PROCESS_TERMINAL 1u
#define PROCESS_NO_NEW_PRIVILEGES 2u
#define PROCESS_HOME_FROM_PASSWD 4u /* no HOME in the env: set it from the container's /etc/passwd (home.c) */

enum plan_mode { MODE_CREATE = 0, MODE_EXEC = 1 };

struct plan_ns {
	uint32_t type; /* CLONE_NEW* */
	const char *path; /* NULL: create */
};

struct plan_idmap {
	uint32_t container_id, host_id, size;
};

struct plan_timeoff {
	uint32_t clock;
	int64_t secs;
	uint32_t nsecs;
};

#define MOUNT_DEST_FILE 1u /* the mount point is a file (bind of a file) */
#define MOUNT_COPY_UP 2u   /* tmpcopyup: fill the tmpfs with what the directory held */
#define MOUNT_DETACHED_SOURCE 4u /* bind: the source is taken on the host side (idmap.c) */
#define MOUNT_READONLY_LATE 8u   /* remounted read-only once /dev is filled (rootfs_finish_paths) */
#define MOUNT_IDMAP_RECURSIVE 1u /* ridmap: MOUNT_ATTR_IDMAP on every mount of the tree */

struct plan_mount {
	uint32_t flags, remount_flags, rec_attr_set, rec_attr_clr, dest_kind; /* dest_kind: MOUNT_* bits */
	uint32_t nprop;
	uint32_t *prop;
	const char *source, *destination, *fstype, *data;
	/* MOUNT_IDMAP record (idmap.c): the mapping of an idmapped bind mount */
	bool idmap;
	uint32_t idmap_flags; /* MOUNT_IDMAP_* */
	struct plan_idmap *idmap_uid, *idmap_gid;
	uint32_t n_idmap_uid, n_idmap_gid;
	const char *idmap_userns; /* NULL: a new user namespace holding the maps above */
};

struct plan_device {
	uint32_t type, major, minor, mode, uid, gid, bind_from_host;
	const char *path;
};

struct plan_pair {
	const char *a, *b;
};

struct plan_rlimit {
	uint32_t resource;
	uint64_t soft, hard;
};

/* seccomp (phase 2) */
enum scmp_action_code {
	SA_KILL = 0, SA_KILL_PROCESS, SA_KILL_THREAD, SA_TRAP, SA_ERRNO, SA_TRACE, SA_ALLOW, SA_LOG, SA_NOTIFY,
	SA_MAX = SA_NOTIFY,
};
struct plan_scmp_arg {
	uint32_t index, op;
	uint64_t value, value_two;
};
struct plan_scmp_rule {
	uint32_t action, errno_ret;
	uint32_t nnames, nargs;
	const char **names;
	struct plan_scmp_arg *args;
};

/* A startContainer hook, run by the init in the container (helper/hooks.c). */
struct plan_hook {
	uint32_t timeout; /* seconds, 0: none */
	const char *path;
	const char **argv; /* NULL-terminated */
	const char **envp; /* NULL-terminated; NULL: the process's environment (START_HOOK_PROCESS_ENV) */
};
#define START_HOOK_PROCESS_ENV 0xffffffffu /* START_HOOK nEnv: no env of its own */

/* exec's execCPUAffinity: [0] initial, [1] final */
struct plan_affinity {
	bool have;
	uint32_t *cpus;
	size_t n_cpus;
};

#define ARRAY(type, name) \
	type *name;       \
	size_t n_##name

struct plan {
	uint32_t mode, flags, rootfs_propagation, preserve_fds;
	ARRAY(struct plan_ns, namespaces);
	ARRAY(struct plan_idmap, uid_maps);
	ARRAY(struct plan_idmap, gid_maps);
	ARRAY(struct plan_timeoff, time_offsets);
	ARRAY(const char *, cgroup_procs);
	const char *rootfs;
	ARRAY(struct plan_mount, mounts);
	ARRAY(struct plan_device, devices);
	ARRAY(struct plan_pair, symlinks);
	ARRAY(const char *, masked);
	ARRAY(const char *, readonly);
	ARRAY(struct plan_pair, sysctls);
	const char *hostname, *domainname;

	bool have_process;
	uint32_t proc_flags, uid, gid, console_height, console_width;
	const char *cwd;
	ARRAY(const char *, args); /* NULL-terminated as well, for execve */
	ARRAY(const char *, env); /* NULL-terminated as well */
	ARRAY(gid_t, gids);
	bool have_umask;
	uint32_t umask;
	ARRAY(struct plan_rlimit, rlimits);
	bool have_caps;
	uint64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient;
	bool have_oom;
	int32_t oom_score_adj;
	const char *console_socket;
	const char *exec_fifo;
	const char *session_keyring;

	bool have_seccomp;
	uint32_t scmp_default_action, scmp_default_errno, scmp_flags;
	const char *scmp_listener_path, *scmp_listener_state;
	ARRAY(const char *, scmp_arches);
	ARRAY(struct plan_scmp_rule, scmp_rules);

	/* startContainer hooks: the status fifo `tsrun start` reads, the state JSON (with @PID@) */
	const char *start_status, *start_state;
	ARRAY(struct plan_hook, start_hooks);

	/* process attributes (helper/attrs.c) */
	bool have_personality, have_ioprio, have_sched;
	uint32_t personality, ioprio, sched_policy, sched_priority;
	int32_t sched_nice;
	uint64_t sched_flags, sched_runtime, sched_deadline, sched_period;
	struct plan_affinity affinity[2];
	const char *apparmor_profile;

	/* rootless: newuidmap/newgidmap paths (NULL: write the map directly); exec's optional cgroups */
	const char *uid_map_helper, *gid_map_helper;
	bool cgroup_procs_optional;
};

/* plan.c */
int plan_read(int fd, struct plan *p, char *err, size_t errlen);
int plan_parse(char *buf, size_t len, struct plan *p, char *err, size_t errlen);

/* report.c: the line protocol and fatal errors */
extern int g_report_fd;     /* where lines go: the sync socket (parent) or the parent (child) */
extern bool g_debug;
extern pid_t g_kill_on_die; /* parent: child to kill and reap before exiting on error */
extern void (*g_die_hook)(void);
extern const char *g_unlink_on_die[2]; /* parent: files it created, removed on a fatal error */
void unlink_on_die_keep(size_t i, const char *path, int fd);
void unlink_on_die_files(void);
void report_line(const char *word, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void report_raw(const char *line, size_t len);
void debug_stage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnx_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die_errnum(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *errtext(int err);
uint64_t now_ns(void);
extern uint64_t g_t0_ns;

/* util.c */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len); /* 0 ok, -1 error, -2 EOF */
int write_file(const char *path, const char *data, size_t len);
int send_fd(int sock, int fd, const char *payload);
int recv_fd(int sock, char *payload, size_t plen);
void set_cloexec(int fd, bool on);

/* ns.c */
int ns_flag_index(uint32_t flag);
const char *ns_name(uint32_t flag);
uint32_t plan_new_ns_flags(const struct plan *p);
bool plan_has_ns(const struct plan *p, uint32_t flag);
bool plan_joins_ns(const struct plan *p, uint32_t flag);
void join_namespaces(const struct plan *p);
void setup_time_ns(const struct plan *p);
void write_id_maps(const struct plan *p, pid_t pid);
void child_enter_userns(const struct plan *p);
pid_t clone_child(uint32_t flags);

/* rootfs.c */
struct rootfs_ctx {
	int rootfd; /* O_PATH fd of the rootfs (the bind mount of it on itself) */
};
void rootfs_prepare(const struct plan *p, struct rootfs_ctx *rc);
void rootfs_mounts(const struct plan *p, struct rootfs_ctx *rc);
void rootfs_devices(const struct plan *p, struct rootfs_ctx *rc);
void rootfs_make_cwd(const struct plan *p, struct rootfs_ctx *rc);
void rootfs_finish_paths(const struct plan *p, struct rootfs_ctx *rc);
void rootfs_pivot(const struct plan *p, struct rootfs_ctx *rc);
void rootfs_after_pivot(const struct plan *p);
int open_in_root(int rootfd, const char *path, int flags, uint64_t resolve);
int mkdir_in_root(int rootfd, const char *path, bool final_is_file);
void clean_path(const char *in, char *out, size_t outlen);

/* idmap.c: idmapped mounts, prepared on the host side, moved into place by the init */
void idmap_prepare(const struct plan *p);
int idmap_take(size_t mount_index);
void idmap_close_all(void);

/* hostmounts.c: mounts made in the caller's mount namespace (no mount namespace), undone on failure */
void note_host_mount(const struct plan *p, int fd);
void host_mount_record(const char *path, size_t len);
void host_mounts_undo(void);
void host_mounts_forget(void);

/* console.c */
int console_setup(int rootfd, const struct plan *p, int console_sock, bool bind_console);
void console_proxy_and_wait(int master, pid_t child, int *status);
int console_connect(const char *path);

/* home.c */
void process_home(struct plan *p);

/* process.c */
void process_rlimits(const struct plan *p);
void process_oom(const struct plan *p);
void process_join_keyring(const struct plan *p);
void process_identity(const struct plan *p, bool seccomp_early);
void process_cwd_first(const struct plan *p, bool *retry);
void process_cwd_check(const struct plan *p, bool retry);
const char *process_resolve(const struct plan *p);
void process_close_fds(const struct plan *p);
_Noreturn void process_exec(const struct plan *p, const char *path);
void reset_signals(void);
const char *cap_name(unsigned cap, char *buf, size_t len);

/* seccomp.c */
void filter_prepare(const struct plan *p);
void filter_connect_listener(const struct plan *p);
void filter_load(const struct plan *p, pid_t host_pid);
extern pid_t g_host_pid; /* the container process as the host sees it (set in the child) */
bool filter_wanted(const struct plan *p);
int print_libseccomp_version(void);

/* attrs.c */
void process_attrs(const struct plan *p);
void affinity_apply(const struct plan *p, int which, pid_t pid);
void process_apparmor(const struct plan *p);

/* seal.c */
void ensure_sealed_exe(int argc, char **argv);

/* hooks.c: startContainer hooks in the init; the --enter mode for createContainer hooks */
char *render_pid_token(const char *text, pid_t pid);
int run_start_hooks(const struct plan *p, pid_t host_pid, char *why, size_t whylen);
_Noreturn void enter_main(int argc, char **argv);

/* bpf-devices.c: the cgroup v2 device program (--device-filter DIR, program on stdin) */
_Noreturn void device_filter_main(int argc, char **argv);

#endif
