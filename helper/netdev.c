/*
 * Host network devices moved into the container's network namespace (CreatePlan.net_devices,
 * runtime-spec 1.3 linux.netDevices), over rtnetlink.
 *
 * Host side, before any namespace is joined: a netlink socket in the host's network namespace
 * (it keeps working after the helper joins others), and for each device its index, whether it
 * is up, and its permanent addresses of universe scope (the kernel drops addresses when a device
 * changes namespace); nothing is changed yet, so a create that fails earlier leaves the device
 * as it was. After the clone and before the init goes on: each device set down (nothing on the
 * host keeps using it meanwhile) and moved and renamed in one RTM_NEWLINK (set up again if the
 * move fails), then its addresses added again and, if it was up, set up again, by a short child
 * that entered the container's network namespace. After that the runtime does not manage the device: the kernel
 * gives a physical one back to the host when that namespace goes away and destroys a virtual one.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ADDRS 64

struct noted_addr {
	unsigned char family, prefixlen;
	unsigned char bytes[16];
	size_t len;
};

struct noted_dev {
	int ifindex;
	bool was_up;
	struct noted_addr addrs[MAX_ADDRS];
	size_t n_addrs;
};

static int g_nl = -1;        /* rtnetlink socket in the host's network namespace */
static int g_netns = -1;     /* the joined network namespace the devices go to, or -1 */
static struct noted_dev *g_devs;
static uint32_t g_seq;

struct request {
	struct nlmsghdr h;
	char body[512];
};

static void add_attr(struct request *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)&r->h + NLMSG_ALIGN(r->h.nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int nl_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Sends a request and reads the answers: each message to each_reply (for a dump), until the
 * dump's end or the request's ack. Returns 0, or -1 with errno (the kernel's, for an error ack). */
static int nl_talk(int fd, struct request *r, void (*each_reply)(struct nlmsghdr *, void *), void *arg)
{
	char buf[16384];

	r->h.nlmsg_seq = ++g_seq;
	if (send(fd, &r->h, r->h.nlmsg_len, 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (e->error == 0)
					return 0;
				errno = -e->error;
				return -1;
			}
			if (each_reply)
				each_reply(h, arg);
		}
	}
}

static void link_request(struct request *r, int ifindex)
{
	struct ifinfomsg *ifi;

	memset(r, 0, sizeof(*r));
	r->h.nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
	r->h.nlmsg_type = RTM_NEWLINK;
	r->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = NLMSG_DATA(&r->h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
}

/* A dump reply: the device's permanent addresses of universe scope. */
static void note_addr(struct nlmsghdr *h, void *arg)
{
	struct noted_dev *d = arg;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *local = NULL, *address = NULL;
	uint32_t flags = ifa->ifa_flags;
	int len = (int)IFA_PAYLOAD(h);

	if (h->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != d->ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE)
		return;
	for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == IFA_LOCAL)
			local = a;
		else if (a->rta_type == IFA_ADDRESS)
			address = a;
		else if (a->rta_type == IFA_FLAGS && RTA_PAYLOAD(a) >= sizeof(uint32_t))
			memcpy(&flags, RTA_DATA(a), sizeof(flags));
	}
	if (!(flags & IFA_F_PERMANENT) || d->n_addrs == MAX_ADDRS)
		return;
	if (!local)
		local = address;
	if (!local || RTA_PAYLOAD(local) > sizeof(d->addrs[0].bytes))
		return;
	struct noted_addr *n = &d->addrs[d->n_addrs++];
	n->family = ifa->ifa_family;
	n->prefixlen = ifa->ifa_prefixlen;
	n->len = RTA_PAYLOAD(local);
	memcpy(n->bytes, RTA_DATA(local), n->len);
}

void netdev_prepare(const Tsrun__CreatePlan *c)
{
	struct request r;

	if (!c || c->n_net_devices == 0)
		return;
	g_nl = nl_open();
	if (g_nl < 0)
		die(ERR(NETDEV_NETLINK), errno, NULL, 0);
	if (c->net_devices_netns[0]) {
		g_netns = open(c->net_devices_netns, O_RDONLY | O_CLOEXEC);
		if (g_netns < 0)
			die(ERR(NETDEV_OPEN_NETNS), errno, c->net_devices_netns, 0);
	}
	g_devs = calloc(c->n_net_devices, sizeof(*g_devs));
	if (!g_devs)
		abort();
	for (size_t i = 0; i < c->n_net_devices; i++) {
		const char *name = c->net_devices[i]->host_name;
		struct noted_dev *d = &g_devs[i];
		struct ifreq ifr;
		d->ifindex = (int)if_nametoindex(name);
		if (d->ifindex == 0)
			die(ERR(NETDEV_LOOKUP), errno, name, (int64_t)i);
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		if (ioctl(g_nl, SIOCGIFFLAGS, &ifr) < 0)
			die(ERR(NETDEV_LOOKUP), errno, name, (int64_t)i);
		d->was_up = (ifr.ifr_flags & IFF_UP) != 0;
		memset(&r, 0, sizeof(r));
		r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
		r.h.nlmsg_type = RTM_GETADDR;
		r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		if (nl_talk(g_nl, &r, note_addr, d) < 0)
			die(ERR(NETDEV_ADDRESSES), errno, name, (int64_t)i);
	}
}

/* In a child that entered the container's network namespace: the noted addresses again, and
 * the device up again if it was up on the host (the spec: its attributes are preserved).
 * Returns 0, or an errno with *which set to the device's index. */
static int restore_attributes(const Tsrun__CreatePlan *c, size_t *which)
{
	struct request r;
	int nl = nl_open();

	if (nl < 0)
		return errno;
	for (size_t i = 0; i < c->n_net_devices; i++) {
		const struct noted_dev *d = &g_devs[i];
		int ifindex = (int)if_nametoindex(c->net_devices[i]->name);
		*which = i;
		if (ifindex == 0)
			return errno;
		for (size_t k = 0; k < d->n_addrs; k++) {
			const struct noted_addr *a = &d->addrs[k];
			struct ifaddrmsg *ifa;
			memset(&r, 0, sizeof(r));
			r.h.nlmsg_len = NLMSG_LENGTH(sizeof(*ifa));
			r.h.nlmsg_type = RTM_NEWADDR;
			r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
			ifa = NLMSG_DATA(&r.h);
			ifa->ifa_family = a->family;
			ifa->ifa_prefixlen = a->prefixlen;
			ifa->ifa_scope = RT_SCOPE_UNIVERSE;
			ifa->ifa_index = (unsigned)ifindex;
			add_attr(&r, IFA_LOCAL, a->bytes, a->len);
			add_attr(&r, IFA_ADDRESS, a->bytes, a->len);
			if (nl_talk(nl, &r, NULL, NULL) < 0)
				return errno;
		}
		if (d->was_up) {
			link_request(&r, ifindex);
			((struct ifinfomsg *)NLMSG_DATA(&r.h))->ifi_flags = IFF_UP;
			((struct ifinfomsg *)NLMSG_DATA(&r.h))->ifi_change = IFF_UP;
			if (nl_talk(nl, &r, NULL, NULL) < 0)
				return errno;
		}
	}
	return 0;
}

/* In a child that entered the container's network namespace: every name the devices are to
 * have must be free there (the kernel would move a device and only then fail to rename it).
 * Returns 0, or an errno with *which set to the device's index. */
static int names_free(const Tsrun__CreatePlan *c, size_t *which)
{
	for (size_t i = 0; i < c->n_net_devices; i++) {
		*which = i;
		if (if_nametoindex(c->net_devices[i]->name) != 0)
			return EEXIST;
	}
	return 0;
}

/* Runs fn in a child in the container's network namespace (entered through the init's pidfd when
 * the clone made it); returns what fn returned, or the errno of getting there. */
static int in_container_netns(const Tsrun__CreatePlan *c, pid_t pid, int (*fn)(const Tsrun__CreatePlan *, size_t *), size_t *which)
{
	int rep[2], result[2] = {0, 0};
	pid_t child;

	if (pipe2(rep, O_CLOEXEC) < 0)
		die(ERR(PIPE), errno, "network devices", 0);
	child = fork();
	if (child < 0)
		die(ERR(FORK), errno, "network devices", 0);
	if (child == 0) {
		size_t w = 0;
		int ns = g_netns >= 0 ? g_netns : (int)syscall(SYS_pidfd_open, pid, 0);
		int err = ns < 0 ? errno : setns(ns, CLONE_NEWNET) < 0 ? errno : fn(c, &w);
		int out[2] = {err, (int)w};
		if (write_all(rep[1], out, sizeof(out)) < 0)
			_exit(1);
		_exit(0);
	}
	close(rep[1]);
	if (read_all(rep[0], result, sizeof(result)) < 0)
		result[0] = EPIPE;
	close(rep[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	*which = (size_t)result[1];
	return result[0];
}

/* Parent, after the clone and before the init goes on. */
void netdev_move(const Tsrun__CreatePlan *c, pid_t pid)
{
	struct request r;
	size_t which = 0;
	int err;

	if (!c || c->n_net_devices == 0)
		return;
	set_stage(STAGE(NAMESPACES));
	err = in_container_netns(c, pid, names_free, &which);
	if (err)
		die(ERR(NETDEV_MOVE), err, c->net_devices[which]->host_name, (int64_t)which);
	for (size_t i = 0; i < c->n_net_devices; i++) {
		const Tsrun__NetDevice *nd = c->net_devices[i];
		uint32_t target = g_netns >= 0 ? (uint32_t)g_netns : (uint32_t)pid;
		link_request(&r, g_devs[i].ifindex);
		((struct ifinfomsg *)NLMSG_DATA(&r.h))->ifi_change = IFF_UP;
		if (nl_talk(g_nl, &r, NULL, NULL) < 0)
			die(ERR(NETDEV_SET_DOWN), errno, nd->host_name, (int64_t)i);
		link_request(&r, g_devs[i].ifindex);
		add_attr(&r, g_netns >= 0 ? IFLA_NET_NS_FD : IFLA_NET_NS_PID, &target, sizeof(target));
		add_attr(&r, IFLA_IFNAME, nd->name, strlen(nd->name) + 1);
		if (nl_talk(g_nl, &r, NULL, NULL) < 0) {
			int e = errno;
			if (g_devs[i].was_up) {
				/* Still on the host: as it was. */
				link_request(&r, g_devs[i].ifindex);
				((struct ifinfomsg *)NLMSG_DATA(&r.h))->ifi_flags = IFF_UP;
				((struct ifinfomsg *)NLMSG_DATA(&r.h))->ifi_change = IFF_UP;
				(void)nl_talk(g_nl, &r, NULL, NULL);
			}
			die(ERR(NETDEV_MOVE), e, nd->host_name, (int64_t)i);
		}
		progress("network device %s moved in as %s (%zu addresses to add)", nd->host_name, nd->name, g_devs[i].n_addrs);
	}
	err = in_container_netns(c, pid, restore_attributes, &which);
	if (err)
		die(ERR(NETDEV_ADD_ADDRESS), err, c->net_devices[which]->name, (int64_t)which);
	close(g_nl);
	g_nl = -1;
	if (g_netns >= 0)
		close(g_netns);
	g_netns = -1;
}
