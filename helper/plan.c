/* Reads the binary launch plan (docs/plan-format.md). Every field is bounds checked;
 * strings point into the plan buffer, which lives as long as the process. */
#include "helper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cur {
	const char *p;
	size_t left;
	bool bad;
};

static uint32_t get_u32(struct cur *c)
{
	uint32_t v = 0;
	if (c->left < 4) {
		c->bad = true;
		return 0;
	}
	memcpy(&v, c->p, 4); /* little-endian host (x86_64, aarch64) */
	c->p += 4;
	c->left -= 4;
	return v;
}

static uint64_t get_u64(struct cur *c)
{
	uint64_t v = 0;
	if (c->left < 8) {
		c->bad = true;
		return 0;
	}
	memcpy(&v, c->p, 8);
	c->p += 8;
	c->left -= 8;
	return v;
}

static const char *get_str(struct cur *c)
{
	const char *nul;
	if (c->bad || c->left == 0) {
		c->bad = true;
		return "";
	}
	nul = memchr(c->p, '\0', c->left);
	if (!nul) {
		c->bad = true;
		return "";
	}
	const char *s = c->p;
	size_t n = (size_t)(nul - c->p) + 1;
	c->p += n;
	c->left -= n;
	return s;
}

/* Appends one zeroed element to a growable array, keeping one more zeroed slot after it (so
 * arrays of strings are NULL-terminated for execve). Aborts on out of memory. */
static void *grow(void *arr, size_t *n, size_t elem)
{
	void *r = realloc(arr, (*n + 2) * elem);
	if (!r)
		abort();
	memset((char *)r + *n * elem, 0, 2 * elem);
	(*n)++;
	return r;
}

#define PUSH(arr, n) ((arr) = grow((arr), &(n), sizeof(*(arr))), &(arr)[(n)-1])

static const char *tag_name(unsigned tag)
{
	static const char *names[] = {
		"?", "GENERAL", "NAMESPACE", "UID_MAPPING", "GID_MAPPING", "TIME_OFFSET", "CGROUP_PROCS",
		"ROOTFS", "MOUNT", "DEVICE", "SYMLINK", "MASKED_PATH", "READONLY_PATH", "SYSCTL", "HOSTNAME",
		"DOMAINNAME", "PROCESS", "ARG", "ENV", "ADDITIONAL_GID", "UMASK", "RLIMIT", "CAPABILITIES",
		"OOM_SCORE_ADJ", "CONSOLE_SOCKET", "EXEC_FIFO", "SECCOMP", "SECCOMP_ARCH", "SECCOMP_RULE",
		"START_HOOKS", "START_HOOK", "SESSION_KEYRING",
	};
	static const char *names40[] = {"PERSONALITY", "IOPRIO", "SCHEDULER", "CPU_AFFINITY", "APPARMOR_PROFILE"};
	if (tag >= TAG_PERSONALITY && tag <= TAG_APPARMOR_PROFILE)
		return names40[tag - TAG_PERSONALITY];
	if (tag == TAG_UID_MAP_HELPER)
		return "UID_MAP_HELPER";
	if (tag == TAG_GID_MAP_HELPER)
		return "GID_MAP_HELPER";
	if (tag == TAG_CGROUP_PROCS_OPTIONAL)
		return "CGROUP_PROCS_OPTIONAL";
	if (tag == TAG_MOUNT_IDMAP)
		return "MOUNT_IDMAP";
	return tag < sizeof(names) / sizeof(names[0]) ? names[tag] : "?";
}

static int parse_record(unsigned tag, unsigned prev_tag, struct cur *c, struct plan *p, char *err, size_t errlen)
{
	switch (tag) {
	case TAG_GENERAL:
		p->mode = get_u32(c);
		p->flags = get_u32(c);
		p->rootfs_propagation = get_u32(c);
		p->preserve_fds = get_u32(c);
		if (p->mode != MODE_CREATE && p->mode != MODE_EXEC) {
			snprintf(err, errlen, "plan: unknown mode %u", p->mode);
			return -1;
		}
		break;
	case TAG_NAMESPACE: {
		struct plan_ns *ns = PUSH(p->namespaces, p->n_namespaces);
		ns->type = get_u32(c);
		ns->path = get_str(c);
		if (!*ns->path)
			ns->path = NULL;
		if (ns_flag_index(ns->type) < 0) {
			snprintf(err, errlen, "plan: unknown namespace type 0x%x", ns->type);
			return -1;
		}
		break;
	}
	case TAG_UID_MAPPING:
	case TAG_GID_MAPPING: {
		struct plan_idmap *m = tag == TAG_UID_MAPPING ? PUSH(p->uid_maps, p->n_uid_maps)
							       : PUSH(p->gid_maps, p->n_gid_maps);
		m->container_id = get_u32(c);
		m->host_id = get_u32(c);
		m->size = get_u32(c);
		break;
	}
	case TAG_TIME_OFFSET: {
		struct plan_timeoff *t = PUSH(p->time_offsets, p->n_time_offsets);
		t->clock = get_u32(c);
		t->secs = (int64_t)get_u64(c);
		t->nsecs = get_u32(c);
		break;
	}
	case TAG_CGROUP_PROCS:
		*PUSH(p->cgroup_procs, p->n_cgroup_procs) = get_str(c);
		break;
	case TAG_ROOTFS:
		p->rootfs = get_str(c);
		break;
	case TAG_MOUNT: {
		struct plan_mount *m = PUSH(p->mounts, p->n_mounts);
		m->flags = get_u32(c);
		m->remount_flags = get_u32(c);
		m->rec_attr_set = get_u32(c);
		m->rec_attr_clr = get_u32(c);
		m->dest_kind = get_u32(c);
		m->nprop = get_u32(c);
		if (c->bad || m->nprop > c->left / 4) {
			c->bad = true;
			break;
		}
		m->prop = calloc(m->nprop + 1, sizeof(uint32_t));
		if (!m->prop)
			abort();
		for (uint32_t i = 0; i < m->nprop; i++)
			m->prop[i] = get_u32(c);
		m->source = get_str(c);
		m->destination = get_str(c);
		m->fstype = get_str(c);
		m->data = get_str(c);
		break;
	}
	case TAG_DEVICE: {
		struct plan_device *d = PUSH(p->devices, p->n_devices);
		d->type = get_u32(c);
		d->major = get_u32(c);
		d->minor = get_u32(c);
		d->mode = get_u32(c);
		d->uid = get_u32(c);
		d->gid = get_u32(c);
		d->bind_from_host = get_u32(c);
		d->path = get_str(c);
		if (!c->bad && d->type != 'c' && d->type != 'b' && d->type != 'p' && d->type != 'u') {
			snprintf(err, errlen, "plan: device %s: unknown type %u", d->path, d->type);
			return -1;
		}
		break;
	}
	case TAG_SYMLINK: {
		struct plan_pair *s = PUSH(p->symlinks, p->n_symlinks);
		s->a = get_str(c);
		s->b = get_str(c);
		break;
	}
	case TAG_MASKED_PATH:
		*PUSH(p->masked, p->n_masked) = get_str(c);
		break;
	case TAG_READONLY_PATH:
		*PUSH(p->readonly, p->n_readonly) = get_str(c);
		break;
	case TAG_SYSCTL: {
		struct plan_pair *s = PUSH(p->sysctls, p->n_sysctls);
		s->a = get_str(c);
		s->b = get_str(c);
		break;
	}
	case TAG_HOSTNAME:
		p->hostname = get_str(c);
		break;
	case TAG_DOMAINNAME:
		p->domainname = get_str(c);
		break;
	case TAG_PROCESS:
		p->have_process = true;
		p->proc_flags = get_u32(c);
		p->uid = get_u32(c);
		p->gid = get_u32(c);
		p->console_height = get_u32(c);
		p->console_width = get_u32(c);
		p->cwd = get_str(c);
		break;
	case TAG_ARG:
		*PUSH(p->args, p->n_args) = get_str(c);
		break;
	case TAG_ENV:
		*PUSH(p->env, p->n_env) = get_str(c);
		break;
	case TAG_ADDITIONAL_GID:
		*PUSH(p->gids, p->n_gids) = get_u32(c);
		break;
	case TAG_UMASK:
		p->have_umask = true;
		p->umask = get_u32(c);
		break;
	case TAG_RLIMIT: {
		struct plan_rlimit *r = PUSH(p->rlimits, p->n_rlimits);
		r->resource = get_u32(c);
		r->soft = get_u64(c);
		r->hard = get_u64(c);
		break;
	}
	case TAG_CAPABILITIES:
		p->have_caps = true;
		p->cap_bounding = get_u64(c);
		p->cap_effective = get_u64(c);
		p->cap_inheritable = get_u64(c);
		p->cap_permitted = get_u64(c);
		p->cap_ambient = get_u64(c);
		break;
	case TAG_OOM_SCORE_ADJ:
		p->have_oom = true;
		p->oom_score_adj = (int32_t)get_u32(c);
		break;
	case TAG_CONSOLE_SOCKET:
		p->console_socket = get_str(c);
		break;
	case TAG_EXEC_FIFO:
		p->exec_fifo = get_str(c);
		break;
	case TAG_SESSION_KEYRING:
		p->session_keyring = get_str(c);
		break;
	case TAG_SECCOMP:
		p->have_seccomp = true;
		p->scmp_default_action = get_u32(c);
		p->scmp_default_errno = get_u32(c);
		p->scmp_flags = get_u32(c);
		p->scmp_listener_path = get_str(c);
		p->scmp_listener_state = get_str(c);
		if (p->scmp_default_action > SA_MAX) {
			snprintf(err, errlen, "plan: unknown seccomp action %u", p->scmp_default_action);
			return -1;
		}
		break;
	case TAG_SECCOMP_ARCH:
		*PUSH(p->scmp_arches, p->n_scmp_arches) = get_str(c);
		break;
	case TAG_SECCOMP_RULE: {
		struct plan_scmp_rule *r = PUSH(p->scmp_rules, p->n_scmp_rules);
		r->action = get_u32(c);
		r->errno_ret = get_u32(c);
		r->nnames = get_u32(c);
		r->nargs = get_u32(c);
		if (c->bad || r->nargs > c->left / 24 || r->nnames > c->left) {
			c->bad = true;
			break;
		}
		if (r->action > SA_MAX) {
			snprintf(err, errlen, "plan: unknown seccomp action %u", r->action);
			return -1;
		}
		r->args = calloc(r->nargs + 1, sizeof(*r->args));
		r->names = calloc(r->nnames + 1, sizeof(*r->names));
		if (!r->args || !r->names)
			abort();
		for (uint32_t i = 0; i < r->nargs; i++) {
			r->args[i].index = get_u32(c);
			r->args[i].op = get_u32(c);
			r->args[i].value = get_u64(c);
			r->args[i].value_two = get_u64(c);
			if (r->args[i].op > 6) {
				snprintf(err, errlen, "plan: unknown seccomp operator %u", r->args[i].op);
				return -1;
			}
		}
		for (uint32_t i = 0; i < r->nnames; i++)
			r->names[i] = get_str(c);
		break;
	}
	case TAG_START_HOOKS:
		p->start_status = get_str(c);
		p->start_state = get_str(c);
		break;
	case TAG_START_HOOK: {
		struct plan_hook *h = PUSH(p->start_hooks, p->n_start_hooks);
		uint32_t nargs, nenv;
		bool inherit;
		h->timeout = get_u32(c);
		nargs = get_u32(c);
		nenv = get_u32(c);
		inherit = nenv == START_HOOK_PROCESS_ENV;
		if (inherit)
			nenv = 0;
		/* every string takes at least its NUL byte */
		if (c->bad || nargs > c->left || nenv > c->left - nargs) {
			c->bad = true;
			break;
		}
		h->path = get_str(c);
		h->argv = calloc((size_t)nargs + 1, sizeof(*h->argv));
		h->envp = inherit ? NULL : calloc((size_t)nenv + 1, sizeof(*h->envp));
		if (!h->argv || (!inherit && !h->envp))
			abort();
		for (uint32_t i = 0; i < nargs; i++)
			h->argv[i] = get_str(c);
		for (uint32_t i = 0; i < nenv; i++)
			h->envp[i] = get_str(c);
		if (!c->bad && (nargs == 0 || h->path[0] != '/')) {
			snprintf(err, errlen, "plan: startContainer hook %s: needs an absolute path and argv[0]", h->path);
			return -1;
		}
		break;
	}
	case TAG_PERSONALITY:
		p->have_personality = true;
		p->personality = get_u32(c);
		break;
	case TAG_IOPRIO:
		p->have_ioprio = true;
		p->ioprio = get_u32(c);
		break;
	case TAG_SCHEDULER:
		p->have_sched = true;
		p->sched_policy = get_u32(c);
		p->sched_nice = (int32_t)get_u32(c);
		p->sched_priority = get_u32(c);
		p->sched_flags = get_u64(c);
		p->sched_runtime = get_u64(c);
		p->sched_deadline = get_u64(c);
		p->sched_period = get_u64(c);
		break;
	case TAG_CPU_AFFINITY: {
		uint32_t which = get_u32(c), n = get_u32(c);
		struct plan_affinity *a;
		if (c->bad || which > 1 || n == 0 || n > c->left / 4) {
			c->bad = true;
			break;
		}
		a = &p->affinity[which];
		a->have = true;
		a->n_cpus = n;
		a->cpus = calloc(n, sizeof(*a->cpus));
		if (!a->cpus)
			abort();
		for (uint32_t i = 0; i < n; i++) {
			a->cpus[i] = get_u32(c);
			if (a->cpus[i] >= 65536)
				c->bad = true;
		}
		break;
	}
	case TAG_APPARMOR_PROFILE:
		p->apparmor_profile = get_str(c);
		break;
	case TAG_UID_MAP_HELPER:
	case TAG_GID_MAP_HELPER: {
		const char *path = get_str(c);
		if (!c->bad && path[0] != '/') {
			snprintf(err, errlen, "plan: %s: needs an absolute path", tag_name(tag));
			return -1;
		}
		if (tag == TAG_UID_MAP_HELPER)
			p->uid_map_helper = path;
		else
			p->gid_map_helper = path;
		break;
	}
	case TAG_CGROUP_PROCS_OPTIONAL:
		p->cgroup_procs_optional = true;
		break;
	case TAG_MOUNT_IDMAP: {
		/* the mapping of the MOUNT record right before it */
		struct plan_mount *m = p->n_mounts ? &p->mounts[p->n_mounts - 1] : NULL;
		uint32_t nu, ng;
		if (!m || m->idmap || prev_tag != TAG_MOUNT) {
			snprintf(err, errlen, "plan: MOUNT_IDMAP record without its own MOUNT record before it");
			return -1;
		}
		m->idmap = true;
		m->idmap_flags = get_u32(c);
		nu = get_u32(c);
		ng = get_u32(c);
		if (c->bad || nu > c->left / 12 || ng > c->left / 12 - nu) {
			c->bad = true;
			break;
		}
		m->idmap_uid = calloc((size_t)nu + 1, sizeof(*m->idmap_uid));
		m->idmap_gid = calloc((size_t)ng + 1, sizeof(*m->idmap_gid));
		if (!m->idmap_uid || !m->idmap_gid)
			abort();
		m->n_idmap_uid = nu;
		m->n_idmap_gid = ng;
		for (uint32_t i = 0; i < nu + ng; i++) {
			struct plan_idmap *e = i < nu ? &m->idmap_uid[i] : &m->idmap_gid[i - nu];
			e->container_id = get_u32(c);
			e->host_id = get_u32(c);
			e->size = get_u32(c);
		}
		m->idmap_userns = get_str(c);
		if (!*m->idmap_userns)
			m->idmap_userns = NULL;
		if (!c->bad && !m->idmap_userns && (nu == 0 || ng == 0)) {
			snprintf(err, errlen, "plan: mount %s: an idmap needs uid and gid mappings or a user namespace path",
				 m->destination);
			return -1;
		}
		break;
	}
	default:
		snprintf(err, errlen,
			 "plan: unknown record tag %u (the plan was written for another helper version; this helper reads plan format version %d)",
			 tag, PLAN_VERSION);
		return -1;
	}
	if (c->bad || c->left != 0) {
		snprintf(err, errlen, "plan: malformed %s record", tag_name(tag));
		return -1;
	}
	return 0;
}

int plan_parse(char *buf, size_t len, struct plan *p, char *err, size_t errlen)
{
	uint32_t version, total;
	bool seen_general = false;
	size_t off = 12;
	unsigned prev_tag = 0;

	memset(p, 0, sizeof(*p));
	if (len < 12 || memcmp(buf, "TSRP", 4) != 0) {
		snprintf(err, errlen, "plan: bad magic (not a tsrun launch plan)");
		return -1;
	}
	memcpy(&version, buf + 4, 4);
	memcpy(&total, buf + 8, 4);
	if (version != PLAN_VERSION) {
		snprintf(err, errlen, "plan: format version %u, this helper reads version %d", version, PLAN_VERSION);
		return -1;
	}
	if (total != len) {
		snprintf(err, errlen, "plan: length %u in the header, %zu bytes given", total, len);
		return -1;
	}
	while (off < len) {
		uint16_t tag;
		uint32_t rlen;
		struct cur c;
		if (len - off < 6) {
			snprintf(err, errlen, "plan: truncated record header at offset %zu", off);
			return -1;
		}
		memcpy(&tag, buf + off, 2);
		memcpy(&rlen, buf + off + 2, 4);
		off += 6;
		if (rlen > len - off) {
			snprintf(err, errlen, "plan: record %u at offset %zu overruns the plan", tag, off - 6);
			return -1;
		}
		c.p = buf + off;
		c.left = rlen;
		c.bad = false;
		if (parse_record(tag, prev_tag, &c, p, err, errlen) < 0)
			return -1;
		prev_tag = tag;
		if (tag == TAG_GENERAL)
			seen_general = true;
		off += rlen;
	}
	if (!seen_general || !p->have_process) {
		snprintf(err, errlen, "plan: missing %s record", seen_general ? "PROCESS" : "GENERAL");
		return -1;
	}
	if (p->n_args == 0) {
		snprintf(err, errlen, "plan: process has no arguments");
		return -1;
	}
	if (p->mode == MODE_CREATE && (!p->rootfs || !*p->rootfs)) {
		snprintf(err, errlen, "plan: create mode without a rootfs");
		return -1;
	}
	/* args and env are used as execve vectors: grow() keeps a zeroed slot after the last. */
	if (!p->env) {
		p->env = calloc(1, sizeof(*p->env));
		if (!p->env)
			abort();
	}
	return 0;
}

int plan_read(int fd, struct plan *p, char *err, size_t errlen)
{
	char head[12];
	uint32_t total;
	char *buf;
	int r;

	r = read_all(fd, head, sizeof(head));
	if (r < 0) {
		snprintf(err, errlen, "plan: read: %s", r == -2 ? "unexpected end of input" : errtext(errno));
		return -1;
	}
	if (memcmp(head, "TSRP", 4) != 0) {
		snprintf(err, errlen, "plan: bad magic (not a tsrun launch plan)");
		return -1;
	}
	memcpy(&total, head + 8, 4);
	{
		uint32_t version;
		memcpy(&version, head + 4, 4);
		if (version != PLAN_VERSION) {
			snprintf(err, errlen, "plan: format version %u, this helper reads version %d", version,
				 PLAN_VERSION);
			return -1;
		}
	}
	if (total < 12 || total > PLAN_MAX_SIZE) {
		snprintf(err, errlen, "plan: bad total length %u", total);
		return -1;
	}
	buf = malloc(total);
	if (!buf)
		abort();
	memcpy(buf, head, 12);
	r = read_all(fd, buf + 12, total - 12);
	if (r < 0) {
		snprintf(err, errlen, "plan: read: %s", r == -2 ? "unexpected end of input" : errtext(errno));
		return -1;
	}
	return plan_parse(buf, total, p, err, errlen);
}
