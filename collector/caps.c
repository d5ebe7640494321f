/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caps.c - after attach the BPF programs run on their own; the drain
 * only reads mmap'd rings. What stays is read access to /proc of other
 * users (container lifecycle, exe paths): CAP_DAC_READ_SEARCH and
 * CAP_SYS_PTRACE. Everything else goes, from the bounding set too, and
 * no_new_privs keeps it gone across exec.
 */
#include <errno.h>
#include <sys/prctl.h>
#include <sys/capability.h>

#include "collector.h"

int kc_drop_caps(void)
{
	static const cap_value_t keep[] = { CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE };
	cap_t caps;
	int err = 0;

	for (cap_value_t v = 0; v <= CAP_LAST_CAP; v++) {
		if (v == keep[0] || v == keep[1])
			continue;
		/* EINVAL: this kernel does not know the capability; nothing to drop */
		if (prctl(PR_CAPBSET_DROP, v, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			return -errno;
	}
	caps = cap_init();
	if (!caps)
		return -errno;
	if (cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET) ||
	    cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET) ||
	    cap_set_proc(caps)) {
		err = -errno;
		goto out;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		err = -errno;
out:
	cap_free(caps);
	return err;
}
