/* lxcbox-setuser UID GID GROUPS CMD [ARG...]
 *
 * Drops to UID:GID with the supplementary groups GROUPS (comma-separated gids, or "-" for
 * none) and execs CMD, searching $PATH.  Bind-mounted
 * read-only into a container for `run -u`: LXC's own lxc.init.uid switches user before its
 * init starts, and that init then fails, so lxcbox switches right before the command instead.
 * Static, so it needs nothing from the image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	gid_t groups[256];
	size_t ngroups = 0;
	char *p, *end;

	if (argc < 5) {
		fprintf(stderr, "usage: %s UID GID GROUPS CMD [ARG...]\n", argv[0]);
		return 125;
	}
	uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
	for (p = argv[3]; strcmp(argv[3], "-") && *p && ngroups < 256; p = *end ? end + 1 : end) {
		groups[ngroups++] = (gid_t)strtoul(p, &end, 10);
		if (end == p)
			break;
	}
	if (setgroups(ngroups, groups) || setgid(gid) || setuid(uid)) {
		fprintf(stderr, "lxcbox: cannot switch to %u:%u: %s\n", uid, gid, strerror(errno));
		return 125;
	}
	execvp(argv[4], argv + 4);
	fprintf(stderr, "lxcbox: exec %s: %s\n", argv[4], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
