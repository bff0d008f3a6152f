/* tsrun-helper: shared declarations. What crosses the boundary with TypeScript is declared in
 * boundary/helper.proto (docs/boundary.md); protobuf-c generates its C side (helper.pb-c.h). */
#ifndef TSRUN_HELPER_H
#define TSRUN_HELPER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "helper.pb-c.h"

/* Short names for the boundary's enums: ERR(MKFIFO) is TSRUN__ERROR_CODE__MKFIFO. */
#define ERR(name) TSRUN__ERROR_CODE__##name
#define STAGE(name) TSRUN__STAGE__STAGE_##name
#define WARN(name) TSRUN__WARNING_CODE__##name

/* What a mode of the helper carries out: create and exec share the launch and the process. */
struct run {
	const Tsrun__Launch *launch;
	const Tsrun__Process *proc;
	const Tsrun__CreatePlan *create; /* NULL in exec mode */
	const Tsrun__ExecPlan *exec;     /* NULL in create mode */
	char **argv;                     /* proc->args, NULL-terminated for execve */
	char **envp;                     /* proc->env, the same */
};

/* boundary.c: frames */
Tsrun__ToHelper *frame_read(int fd); /* NULL at EOF before a frame */
int frame_write(int fd, const Tsrun__FromHelper *ev);

/* report.c: events to TypeScript and fatal errors */
extern int g_report_fd;     /* where frames go: the sync socket (parent) or the parent (child) */
extern bool g_debug;
extern pid_t g_kill_on_die; /* parent: child to kill and reap before exiting on error */
extern void (*g_die_hook)(void);
extern const char *g_unlink_on_die[2]; /* parent: files it created, removed on a fatal error */
void unlink_on_die_keep(size_t i, const char *path, int fd);
void unlink_on_die_files(void);
void set_stage(Tsrun__Stage stage);
void send_event(const Tsrun__FromHelper *ev);
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn_event(Tsrun__WarningCode code, const char *subject, int64_t value);
/* Reports a Failure without ending the process. */
void send_failure(Tsrun__ErrorCode code, int errnum, const char *path, int64_t value, const char *detail);
/* Fatal: reports a Failure (code, errnum or 0, the path or name, a number it concerns), undoes
 * what this process registered (child, files) and exits 1. */
_Noreturn void die(Tsrun__ErrorCode code, int errnum, const char *path, int64_t value);
/* The same with text from outside the helper (a tool's output, a verifier log). */
_Noreturn void die_detail(Tsrun__ErrorCode code, int errnum, const char *path, int64_t value, const char *detail);
uint64_t now_ns(void);
extern uint64_t g_t0_ns;

/* util.c */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len); /* 0 ok, -1 error, -2 EOF */
int write_file(const char *path, const char *data, size_t len);
int send_fd(int sock, int fd, const char *payload);
int recv_fd(int sock, char *payload, size_t plen);
void set_cloexec(int fd, bool on);
char **null_terminated(char **items, size_t n);

/* ns.c */
bool launch_has_ns(const Tsrun__Launch *l, uint32_t flag);
bool launch_new_ns(const Tsrun__Launch *l, uint32_t flag);
uint32_t launch_new_ns_flags(const Tsrun__Launch *l);
void join_namespaces(Tsrun__Namespace *const *ns, size_t n);
void setup_time_ns(const Tsrun__CreatePlan *c);
void write_id_maps(const Tsrun__CreatePlan *c, pid_t pid);
void child_enter_userns(const Tsrun__Launch *l);
pid_t clone_child(uint32_t flags);

/* rootfs.c */
struct rootfs_ctx {
	int rootfd; /* O_PATH fd of the rootfs (the bind mount of it on itself) */
};
void rootfs_prepare(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc);
void rootfs_mounts(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc);
void rootfs_devices(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc);
void rootfs_make_cwd(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc);
void rootfs_finish_paths(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc);
void rootfs_pivot(const Tsrun__CreatePlan *c, struct rootfs_ctx *rc);
void rootfs_after_pivot(const Tsrun__CreatePlan *c);
int open_in_root(int rootfd, const char *path, int flags, uint64_t resolve);
/* What a directory in the container is on: a tmpfs the helper mounted, the rootfs's own
 * filesystem, or another mount (a bind of a host directory such as /dev). */
enum node_place { PLACE_OWN_TMPFS, PLACE_ROOTFS, PLACE_OTHER_MOUNT };
enum node_place node_place(int fd);
int mkdir_in_root(int rootfd, const char *path, bool final_is_file);
void clean_path(const char *in, char *out, size_t outlen);

/* idmap.c: idmapped mounts, prepared on the host side, moved into place by the init */
void idmap_prepare(const Tsrun__CreatePlan *c);
int idmap_take(size_t mount_index);
void idmap_close_all(void);

/* hostmounts.c: mounts made in the caller's mount namespace (no mount namespace), undone on failure */
void host_mounts_track(void);
void note_host_mount(int fd);
void host_mount_record(const char *path);
void host_mounts_undo(void);
void host_mounts_forget(void);

/* console.c */
int console_setup(int rootfd, const Tsrun__Terminal *t, int console_sock, bool bind_console);
void console_proxy_and_wait(int master, pid_t child, int *status);
int console_connect(const char *path);

/* home.c */
void process_home(struct run *r);

/* process.c */
void process_rlimits(const Tsrun__Process *proc);
void process_oom(const Tsrun__Process *proc);
void process_join_keyring(const struct run *r);
void process_identity(const struct run *r, bool hold_admin);
void process_identity_finish(void);
void process_cwd_first(const Tsrun__Process *proc, bool *retry);
void process_cwd_check(const Tsrun__Process *proc, bool retry);
const char *process_resolve(const struct run *r);
void process_replace_null_fds(const Tsrun__Launch *l);
void process_close_fds(const Tsrun__Launch *l);
_Noreturn void process_exec(const struct run *r, const char *path);
void reset_signals(void);

/* seccomp.c */
void filter_prepare(const Tsrun__Seccomp *s);
void filter_connect_listener(const Tsrun__Seccomp *s);
void filter_load(const Tsrun__Seccomp *s, pid_t host_pid);
extern pid_t g_host_pid; /* the container process as the host sees it (set in the child) */
_Noreturn void libseccomp_version_main(void);

/* attrs.c */
void process_attrs(const struct run *r);
void affinity_apply(const Tsrun__ExecPlan *e, bool final, pid_t pid);
void process_apparmor(const Tsrun__Process *proc);
void process_mempolicy(const Tsrun__Launch *l);

/* seal.c */
void ensure_sealed_exe(char **argv);

/* hooks.c: startContainer hooks in the init; the enter mode for createContainer hooks */
char *render_pid_token(const char *text, pid_t pid);
void run_start_hooks(const Tsrun__StartHooks *h, pid_t host_pid, int status_fd, char *const *process_env);
_Noreturn void enter_main(const Tsrun__EnterPlan *e, int report_fd);

/* netdev.c: host network devices moved into the container's network namespace */
void netdev_prepare(const Tsrun__CreatePlan *c);
void netdev_move(const Tsrun__CreatePlan *c, pid_t pid);

/* bpf-devices.c: the cgroup v2 device program */
_Noreturn void device_filter_main(const Tsrun__DeviceFilterPlan *d);
_Noreturn void device_filter_count_main(int argc, char **argv);

#endif
