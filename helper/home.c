/* HOME for a process whose environment has none (Process.home_from_passwd): the home directory
 * of its uid in the container's /etc/passwd, "/" when there is no entry, as runc sets it. Read
 * in the container (after pivot_root, or after joining its mount namespace), before the user
 * switch, so a passwd file only root may read still counts. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASSWD_MAX (16u << 20) /* a larger /etc/passwd is read no further */

/* The home field of the first line whose uid field is exactly `uid`; NULL if none. The file is
 * the container's: only a regular file is read (a fifo or a device would block or never end). */
static char *home_of(uid_t uid)
{
	struct stat st;
	char *home = NULL, line[8192];
	size_t total = 0;
	FILE *f;
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "r"))) {
		close(fd);
		return NULL;
	}
	while (!home && total < PASSWD_MAX && fgets(line, sizeof(line), f)) {
		char *field[7], *s = line, *end;
		size_t n = 0, len = strlen(line);
		unsigned long v;

		total += len;
		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			/* an overlong line: skip the rest of it */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				total++;
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		while (n < 7) {
			field[n++] = s;
			s = strchr(s, ':');
			if (!s)
				break;
			*s++ = '\0';
		}
		if (n < 6 || !*field[2] || strspn(field[2], "0123456789") != strlen(field[2]))
			continue;
		errno = 0;
		v = strtoul(field[2], &end, 10);
		if (errno || v != (unsigned long)uid)
			continue;
		home = strdup(field[5]);
		if (!home)
			die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
	}
	fclose(f);
	return home;
}

void process_home(struct run *r)
{
	size_t n = 0, at;
	char *home, *kv;

	if (!r->proc->home_from_passwd)
		return;
	while (r->envp[n])
		n++;
	for (at = 0; at < n; at++) {
		if (strncmp(r->envp[at], "HOME=", 5) != 0)
			continue;
		if (r->envp[at][5] != '\0')
			return; /* TypeScript asks only when there is none; a non-empty one is kept */
		break;
	}
	home = home_of((uid_t)r->proc->uid);
	if (asprintf(&kv, "HOME=%s", home ? home : "/") < 0)
		die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
	free(home);
	if (at == n) {
		char **env = realloc(r->envp, (n + 2) * sizeof(*env));
		if (!env)
			die(ERR(OUT_OF_MEMORY), ENOMEM, NULL, 0);
		env[n] = kv;
		env[n + 1] = NULL;
		r->envp = env;
	} else {
		r->envp[at] = kv;
	}
}
