/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.c - learn which hooks this kernel offers by loading and
 * attaching one trivial program of each kind (a kernel may load what it
 * cannot attach: fentry and LSM here). The report becomes
 * NodeCapabilities; the loader picks the best hook it lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "probe.skel.h"

static kc_log_fn log_fn;
static void *log_ctx;

void kc_set_log(kc_log_fn fn, void *ctx)
{
	log_fn = fn;
	log_ctx = ctx;
}

void kc_log(int level, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	if (!log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_fn(level, buf, log_ctx);
}

static const char *const hook_names[KC_HOOK__COUNT] = {
	[KC_HOOK_TRACEPOINT] = "tracepoint",
	[KC_HOOK_RAW_TP] = "raw_tracepoint",
	[KC_HOOK_TP_BTF] = "tp_btf",
	[KC_HOOK_KPROBE] = "kprobe",
	[KC_HOOK_FENTRY] = "fentry",
	[KC_HOOK_LSM] = "bpf_lsm",
	[KC_HOOK_CGROUP_SKB] = "cgroup_skb",
	[KC_HOOK_RINGBUF] = "ringbuf",
};

const char *kc_hook_name(enum kc_hook h)
{
	return h < KC_HOOK__COUNT ? hook_names[h] : "?";
}

#define TRACEFS "/sys/kernel/tracing"

int kc_mount_tracefs(bool *mounted)
{
	struct statfs sf;

	*mounted = false;
	if (statfs(TRACEFS, &sf) == 0 && sf.f_type == TRACEFS_MAGIC)
		return 0;
	if (mount("nodev", TRACEFS, "tracefs", 0, NULL) < 0)
		return -errno;
	*mounted = true;
	return 0;
}

int kc_cgroup2_path(char *buf, size_t len)
{
	static const char *const cands[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
	struct statfs sf;
	FILE *f;
	char line[512], dev[128], mnt[256], type[64];

	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		if (statfs(cands[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
			snprintf(buf, len, "%s", cands[i]);
			return 0;
		}
	}
	/* mounted somewhere unusual: ask the mount table */
	f = fopen("/proc/self/mounts", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %255s %63s", dev, mnt, type) == 3 && !strcmp(type, "cgroup2")) {
			snprintf(buf, len, "%s", mnt);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	buf[0] = 0;
	return -ENOENT;
}

static int silent_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/* Load and attach the one program of @skel named @name; 0 or -errno. */
static int try_hook(const char *name, const char *cgroup2, char *reason, size_t rlen)
{
	struct probe_bpf *skel = probe_bpf__open();
	struct bpf_program *prog, *p;
	struct bpf_link *link = NULL;
	int err = 0, cgfd = -1;

	if (!skel) {
		err = -errno;
		snprintf(reason, rlen, "open: %s", strerror(-err));
		return err;
	}
	prog = bpf_object__find_program_by_name(skel->obj, name);
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, p == prog);
	err = probe_bpf__load(skel);
	if (err) {
		snprintf(reason, rlen, "load: %s", strerror(-err));
		goto out;
	}
	if (!strcmp(name, "probe_cgroup_skb")) {
		cgfd = open(cgroup2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0) {
			err = -errno;
			snprintf(reason, rlen, "open cgroup2: %s", strerror(-err));
			goto out;
		}
		link = bpf_program__attach_cgroup(prog, cgfd);
	} else {
		link = bpf_program__attach(prog);
	}
	if (!link) {
		err = -errno;
		snprintf(reason, rlen, "attach: %s", strerror(-err));
	}
out:
	bpf_link__destroy(link);
	if (cgfd >= 0)
		close(cgfd);
	probe_bpf__destroy(skel);
	return err;
}

void kc_probe(struct kc_caps *caps)
{
	static const struct { enum kc_hook h; const char *prog; } progs[] = {
		{ KC_HOOK_TRACEPOINT, "probe_tp" },
		{ KC_HOOK_RAW_TP, "probe_raw_tp" },
		{ KC_HOOK_TP_BTF, "probe_tp_btf" },
		{ KC_HOOK_KPROBE, "probe_kprobe" },
		{ KC_HOOK_FENTRY, "probe_fentry" },
		{ KC_HOOK_LSM, "probe_lsm" },
		{ KC_HOOK_CGROUP_SKB, "probe_cgroup_skb" },
		{ KC_HOOK_RINGBUF, "probe_ringbuf" },
	};
	libbpf_print_fn_t old;
	struct utsname u;
	FILE *f;
	char line[256];

	memset(caps, 0, sizeof(*caps));
	if (uname(&u) == 0)
		snprintf(caps->kernel, sizeof(caps->kernel), "%s", u.release);
	caps->btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	caps->tracefs = kc_mount_tracefs(&caps->tracefs_mounted_by_us) == 0;
	kc_cgroup2_path(caps->cgroup2_path, sizeof(caps->cgroup2_path));
	f = fopen("/proc/self/mounts", "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (strstr(line, " cgroup ")) /* a v1 hierarchy next to v2 */
				caps->cgroup_hybrid = true;
		fclose(f);
	}
	caps->ncpus = libbpf_num_possible_cpus() > 0 ? libbpf_num_possible_cpus() : 0;

	/* expected failures (kprobe, fentry, LSM here) must not spam stderr */
	old = libbpf_set_print(silent_print);
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		enum kc_hook h = progs[i].h;

		if (h == KC_HOOK_CGROUP_SKB && !caps->cgroup2_path[0]) {
			snprintf(caps->reason[h], sizeof(caps->reason[h]), "no cgroup v2 mount");
			continue;
		}
		caps->hook[h] = try_hook(progs[i].prog, caps->cgroup2_path,
					 caps->reason[h], sizeof(caps->reason[h])) == 0;
		if (!caps->hook[h])
			kc_log(KC_INFO, "probe: %s unavailable (%s)", hook_names[h], caps->reason[h]);
	}
	for (uint64_t sz = 1ull << 20; sz <= 1ull << 28; sz <<= 2) {
		int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "kl_probe_rb", 0, 0, sz, NULL);

		if (fd < 0)
			break;
		caps->ringbuf_max_bytes = sz;
		close(fd);
	}
	libbpf_set_print(old);
	caps->syscall_attach = caps->hook[KC_HOOK_RAW_TP] && caps->hook[KC_HOOK_TP_BTF] ? "tp_btf" :
			       caps->hook[KC_HOOK_RAW_TP] ? "raw_tracepoint" :
			       caps->hook[KC_HOOK_TRACEPOINT] ? "tracepoint" : "none";
}

void kc_caps_print(const struct kc_caps *c, FILE *f, bool json)
{
	if (json) {
		fprintf(f, "{\"kernel\":\"%s\",\"btf\":%s,\"tracefs\":%s,\"cgroup2\":\"%s\","
			"\"cgroup_hybrid\":%s,\"ncpus\":%u,\"ringbuf_max_bytes\":%llu,"
			"\"syscall_attach\":\"%s\",\"hooks\":{",
			c->kernel, c->btf ? "true" : "false", c->tracefs ? "true" : "false",
			c->cgroup2_path, c->cgroup_hybrid ? "true" : "false", c->ncpus,
			(unsigned long long)c->ringbuf_max_bytes, c->syscall_attach);
		for (int h = 0; h < KC_HOOK__COUNT; h++) {
			fprintf(f, "%s\"%s\":{\"available\":%s", h ? "," : "", hook_names[h],
				c->hook[h] ? "true" : "false");
			if (!c->hook[h]) {
				/* reasons are strerror text: no quotes or backslashes */
				fprintf(f, ",\"reason\":\"%s\"", c->reason[h]);
			}
			fputc('}', f);
		}
		fprintf(f, "},\"fallbacks\":{\"syscalls\":\"%s\",\"process_lifecycle\":\"%s\","
			"\"dns\":\"%s\"}}\n",
			c->syscall_attach,
			c->hook[KC_HOOK_RAW_TP] ? "raw_tracepoint sched_process_*" : "none",
			c->hook[KC_HOOK_CGROUP_SKB] ? "cgroup_skb" : "none");
		return;
	}
	fprintf(f, "kernel          %s\n", c->kernel);
	fprintf(f, "btf             %s\n", c->btf ? "yes" : "no");
	fprintf(f, "tracefs         %s%s\n", c->tracefs ? "yes" : "no",
		c->tracefs_mounted_by_us ? " (mounted now)" : "");
	fprintf(f, "cgroup v2       %s%s\n", c->cgroup2_path[0] ? c->cgroup2_path : "none",
		c->cgroup_hybrid ? " (hybrid)" : "");
	fprintf(f, "cpus            %u\n", c->ncpus);
	fprintf(f, "ringbuf max     %llu bytes (largest probed)\n", (unsigned long long)c->ringbuf_max_bytes);
	fprintf(f, "\n%-16s %-4s %s\n", "HOOK", "OK", "REASON");
	for (int h = 0; h < KC_HOOK__COUNT; h++)
		fprintf(f, "%-16s %-4s %s\n", hook_names[h], c->hook[h] ? "yes" : "no",
			c->hook[h] ? "" : c->reason[h]);
	fprintf(f, "\nsyscalls via    %s\n", c->syscall_attach);
}
