/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privs.c - the one way an unprivileged stage sheds root: every stage
 * that may be started as root (by hand, or before the supervisor lands)
 * calls this after opening its rings and before reading any event.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <kloudlens/recutil.h>

int kl_drop_privileges(const char *user, char *note, size_t notelen)
{
	if (note && notelen)
		note[0] = 0;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(user);
		if (!pw && strcmp(user, "nobody") != 0) {
			if (note)
				snprintf(note, notelen, "user %s does not exist, running as nobody", user);
			pw = getpwnam("nobody");
		}
		if (!pw)
			return -ENOENT;
		/* Clear the bounding set while we still hold CAP_SETPCAP. */
		for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
				return -errno;
		if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
			return -errno;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	cap_t none = cap_init();
	if (!none)
		return -ENOMEM;
	int r = cap_set_proc(none);
	cap_free(none);
	if (r < 0)
		return -errno;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return 0;
}
