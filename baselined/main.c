/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-baselined - intents (+ enriched for syscalls) in, deviations out,
 * profiles on disk (docs/baseline.md). Also `kl-baselined merge A B`.
 *
 * kl_stage_setup() opens rings and stats area while it may still be
 * root; its before_drop hook (below) adds the profiles directory and the
 * RPC socket; then it drops to the stage user and attaches to the inputs.
 * The RPC handlers run on the server's thread: every engine access holds
 * `lock`.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>
#include <kloudlens/stage.h>

#include "engine.h"
#include "policy.h"
#include "profile.h"
#include "rpcsrv.h"
#include "kloudlens.pb-c.h"

#define BATCH 256
#define COMPONENT "kl-baselined"

struct daemon {
	pthread_mutex_t lock;
	struct bl_engine *e;
	const char *profiles;
	char node[256];
	int64_t off;                    /* wall - mono, for profile times */
	uint64_t saved, save_errors;
};

static void usage(FILE *o)
{
	fputs("usage: kl-baselined [options]\n"
	      "       kl-baselined merge A.json B.json [-o OUT.json]\n"
	      "  --dir DIR            rings directory (default " SHM_DEFAULT_DIR ")\n"
	      "  --input NAME         intents ring (default intents)\n"
	      "  --syscalls NAME      enriched ring for the syscall set (default enriched; \"\" = none)\n"
	      "  --output NAME        ring to write (default deviations)\n"
	      "  --capacity BYTES     output ring capacity (default 16 MiB)\n"
	      "  --user NAME          user to run as when started as root (default kloudlens)\n"
	      "  --wait SEC           wait this long for the input rings (default 30)\n"
	      "  --node NAME          node name in profiles and deviations (default: hostname)\n"
	      "  --profiles DIR       profiles on disk (default /var/lib/kloudlens/profiles)\n"
	      "  --policy-dir DIR     BaselinePolicy YAML objects (docker mode); only selected workloads learn\n"
	      "  --rpc URL            request/reply endpoint (default ipc://<rings dir>/kl-baselined.sock)\n"
	      "  host-mode default policy (every workload, when no --policy-dir):\n"
	      "  --window DUR         learning window (default 1h)\n"
	      "  --min-samples N      intents needed before the profile is taken (default 1000)\n"
	      "  --min-pods N         distinct pods/containers (default 1)\n"
	      "  --categories LIST    exec,file-read,file-write,file-exec,egress,ingress,listen,dns,syscalls,uids\n"
	      "                       (default all)\n"
	      "  --emit none          take profiles but emit no deviations\n"
	      "  detection:\n"
	      "  --rate-window DUR    one deviation per (workload, kind, item) per window (default 60s)\n"
	      "  --rare-floor N       learned fewer than N times = rare (default 0: off)\n"
	      "  --max-workloads N    (default 4096)   --max-items N per workload (default 65536)\n",
	      o);
}

static int parse_categories(const char *s, uint32_t *out)
{
	static const struct { const char *n; uint32_t b; } cats[] = {
		{ "exec", BL_LEARN_EXEC }, { "file-read", BL_LEARN_FILE_R }, { "file-write", BL_LEARN_FILE_W },
		{ "file-exec", BL_LEARN_FILE_X },
		{ "files", BL_LEARN_FILE_R | BL_LEARN_FILE_W | BL_LEARN_FILE_X },
		{ "egress", BL_LEARN_EGRESS }, { "ingress", BL_LEARN_INGRESS }, { "listen", BL_LEARN_LISTEN },
		{ "dns", BL_LEARN_DNS }, { "syscalls", BL_LEARN_SYSCALLS }, { "capabilities", BL_LEARN_CAPS },
		{ "uids", BL_LEARN_UIDS }, { "all", BL_LEARN_ALL },
	};
	char buf[512], *save = NULL;
	uint32_t v = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < sizeof(cats) / sizeof(cats[0]); i++)
			if (!strcmp(t, cats[i].n))
				break;
		if (i == sizeof(cats) / sizeof(cats[0]))
			return -EINVAL;
		v |= cats[i].b;
	}
	*out = v;
	return 0;
}

/* Write every changed profile; called with the lock held. */
static void save_dirty(struct daemon *d)
{
	struct bl_workload *w;

	while ((w = bl_engine_next_dirty(d->e))) {
		struct bl_wview v;
		struct kl_buf b = { 0 };
		char id[32];
		int r;
		bl_workload_view(w, &v);
		if (v.state != BL_ACTIVE && v.state != BL_READY)
			continue;       /* nothing taken yet (or reset): the old file stays until replaced */
		bl_profile_id_str(id, sizeof(id), v.profile_id);
		r = bl_profile_render(&b, &v, 1, id, d->node, d->off, kl_now_real_ns());
		if (!r)
			r = bl_profile_save(d->profiles, id, &b);
		kl_buf_free(&b);
		if (r) {
			d->save_errors++;
			kl_log(COMPONENT, "error", "save profile %s/%s.json (%s): %s", d->profiles, id, v.key,
			       strerror(-r));
		} else {
			d->saved++;
			kl_log(COMPONENT, "info", "profile %s for %s: %s, %zu items, %llu samples", id, v.key,
			       bl_state_name(v.state), v.nitems, (unsigned long long)v.samples);
		}
	}
}

/* Reload the profiles on disk: the newest window per workload wins. */
static void load_profiles(struct daemon *d)
{
	DIR *dir = opendir(d->profiles);
	struct dirent *de;
	char err[512];

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		char path[4096];
		struct bl_loaded *pl;
		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->profiles, de->d_name);
		if (bl_profile_load(path, &pl, err, sizeof(err))) {
			kl_log(COMPONENT, "warn", "profile not loaded: %s", err);
			continue;
		}
		for (size_t i = 0; i < pl->nw; i++) {
			struct bl_workload *w = bl_engine_find(d->e, pl->w[i].key);
			struct bl_wview v;
			if (w) {
				bl_workload_view(w, &v);
				if (v.win_end_ns >= pl->w[i].win_end_ns)
					continue;
			}
			int r = bl_engine_install(d->e, &pl->w[i]);
			if (r)
				kl_log(COMPONENT, "warn", "install %s from %s: %s", pl->w[i].key, path, strerror(-r));
		}
		bl_loaded_free(pl);
	}
	closedir(dir);
}

static void apply_policies(struct daemon *d, const char *pdir, const struct bl_policy *def)
{
	struct bl_policy *pol = NULL;
	size_t n = 0;
	char err[512];
	int r = bl_policy_load_dir(pdir, &pol, &n, err, sizeof(err));

	if (r) {
		/* the last good set stays in force */
		kl_log(COMPONENT, "error", "policies not applied: %s", r == -EINVAL ? err : strerror(-r));
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (pol[i].labels_len)
			kl_log(COMPONENT, "warn", "%s: %s: spec.selector.podLabels cannot be matched (the rings "
			       "carry no labels); selecting by container/image only (nothing if neither is set)",
			       pol[i].file, pol[i].name);
	pthread_mutex_lock(&d->lock);
	r = bl_engine_set_policies(d->e, pol, n, def);
	pthread_mutex_unlock(&d->lock);
	kl_log(COMPONENT, "info", "%zu BaselinePolicy objects from %s", n, pdir);
	free(pol);
}

/* ---- RPC ---------------------------------------------------------------------- */

static int admin(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg, size_t msglen,
		 int which)
{
	struct daemon *d = ctx;
	const Kloudlens__V1__BaselineRequest *rq = (const void *)req;
	Kloudlens__V1__BaselineResponse *rs = malloc(sizeof(*rs));
	const char *key = rq->workload;
	int n = 0, code = KL_OK;

	if (!rs)
		return KL_INTERNAL;
	kloudlens__v1__baseline_response__init(rs);
	pthread_mutex_lock(&d->lock);
	if (which == 2 && rq->profile_id && *rq->profile_id) {
		/* activate a profile from disk by id */
		char path[4096], err[512];
		struct bl_loaded *pl;
		snprintf(path, sizeof(path), "%s/%s.json", d->profiles, rq->profile_id);
		if (strchr(rq->profile_id, '/') || bl_profile_load(path, &pl, err, sizeof(err))) {
			snprintf(msg, msglen, "profile %s: %s", rq->profile_id, strchr(rq->profile_id, '/') ? "bad id" : err);
			code = KL_NOT_FOUND;
		} else {
			for (size_t i = 0; i < pl->nw; i++) {
				pl->w[i].state = BL_ACTIVE;
				if (!bl_engine_install(d->e, &pl->w[i]))
					n++;
			}
			bl_loaded_free(pl);
		}
	} else if (key && *key && !bl_engine_find(d->e, key)) {
		snprintf(msg, msglen, "no workload %s", key);
		code = KL_NOT_FOUND;
	} else {
		n = which == 0 ? bl_engine_reset(d->e, key) : which == 1 ? bl_engine_promote(d->e, key)
								   : bl_engine_activate(d->e, key);
	}
	if (code == KL_OK) {
		struct bl_workload *w = key && *key ? bl_engine_find(d->e, key) : NULL;
		char id[32] = "";
		if (w) {
			struct bl_wview v;
			bl_workload_view(w, &v);
			if (v.profile_id)
				bl_profile_id_str(id, sizeof(id), v.profile_id);
			rs->state = strdup(bl_state_name(v.state));
		} else {
			rs->state = strdup("");
		}
		rs->profile_id = strdup(id);
		rs->workloads = (uint32_t)n;
		rs->message = strdup("");
		save_dirty(d);
	}
	pthread_mutex_unlock(&d->lock);
	if (code != KL_OK || !rs->state || !rs->profile_id || !rs->message) {
		protobuf_c_message_free_unpacked(&rs->base, NULL);
		return code != KL_OK ? code : KL_INTERNAL;
	}
	*resp = &rs->base;
	return KL_OK;
}

static int rpc_reset(void *c, const ProtobufCMessage *q, ProtobufCMessage **r, char *m, size_t l)
{
	return admin(c, q, r, m, l, 0);
}
static int rpc_promote(void *c, const ProtobufCMessage *q, ProtobufCMessage **r, char *m, size_t l)
{
	return admin(c, q, r, m, l, 1);
}
static int rpc_activate(void *c, const ProtobufCMessage *q, ProtobufCMessage **r, char *m, size_t l)
{
	return admin(c, q, r, m, l, 2);
}

static int rpc_list_workloads(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg,
			      size_t msglen)
{
	struct daemon *d = ctx;
	const Kloudlens__V1__ListWorkloadsRequest *rq = (const void *)req;
	Kloudlens__V1__ListWorkloadsResponse *rs = malloc(sizeof(*rs));
	int code = KL_OK;

	(void)msg;
	(void)msglen;
	if (!rs)
		return KL_INTERNAL;
	kloudlens__v1__list_workloads_response__init(rs);
	pthread_mutex_lock(&d->lock);
	size_t n = bl_engine_nworkloads(d->e);
	rs->workloads = calloc(n ? n : 1, sizeof(*rs->workloads));
	for (size_t i = 0; rs->workloads && i < n; i++) {
		struct bl_wview v;
		bl_workload_view(bl_engine_workload(d->e, i), &v);
		if (rq->workload && *rq->workload && strcmp(rq->workload, v.key))
			continue;
		Kloudlens__V1__BaselineWorkload *w = malloc(sizeof(*w));
		char id[32] = "";
		if (!w) {
			code = KL_INTERNAL;
			break;
		}
		kloudlens__v1__baseline_workload__init(w);
		rs->workloads[rs->n_workloads++] = w;
		if (v.profile_id)
			bl_profile_id_str(id, sizeof(id), v.profile_id);
		w->workload = strdup(v.key);
		w->state = strdup(bl_state_name(v.state));
		w->profile_id = strdup(id);
		w->policy = strdup(v.policy);
		w->samples = v.samples;
		w->items = v.nitems;
		w->deviations = v.deviations;
		w->window_start_ns = v.win_start_ns;
		w->window_ns = v.window_ns;
		w->pods = (uint32_t)v.pods;
		if (!w->workload || !w->state || !w->profile_id || !w->policy)
			code = KL_INTERNAL;
	}
	pthread_mutex_unlock(&d->lock);
	if (!rs->workloads || code != KL_OK) {
		protobuf_c_message_free_unpacked(&rs->base, NULL);
		return KL_INTERNAL;
	}
	*resp = &rs->base;
	return KL_OK;
}

static int rpc_list_profiles(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg,
			     size_t msglen)
{
	struct daemon *d = ctx;
	Kloudlens__V1__ListProfilesResponse *rs = malloc(sizeof(*rs));
	DIR *dir;
	struct dirent *de;

	(void)req;
	if (!rs)
		return KL_INTERNAL;
	kloudlens__v1__list_profiles_response__init(rs);
	dir = opendir(d->profiles);
	if (!dir) {
		snprintf(msg, msglen, "%s: %s", d->profiles, strerror(errno));
		free(rs);
		return KL_UNAVAILABLE;
	}
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		char path[4096], err[256];
		struct stat st;
		struct bl_loaded *pl;
		if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->profiles, de->d_name);
		if (stat(path, &st) || bl_profile_load(path, &pl, err, sizeof(err)))
			continue;
		void *nv = realloc(rs->profiles, (rs->n_profiles + 1) * sizeof(*rs->profiles));
		Kloudlens__V1__BaselineProfileInfo *p = malloc(sizeof(*p));
		if (!nv || !p) {
			free(p);
			if (nv)
				rs->profiles = nv;
			bl_loaded_free(pl);
			break;
		}
		rs->profiles = nv;
		kloudlens__v1__baseline_profile_info__init(p);
		p->profile_id = strdup(pl->id);
		p->workload = strdup(pl->nw ? pl->w[0].key : "");
		p->path = strdup(path);
		p->size_bytes = (uint64_t)st.st_size;
		rs->profiles[rs->n_profiles++] = p;
		bl_loaded_free(pl);
	}
	closedir(dir);
	*resp = &rs->base;
	return KL_OK;
}

static int rpc_get_profile(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg,
			   size_t msglen)
{
	struct daemon *d = ctx;
	const Kloudlens__V1__GetProfileRequest *rq = (const void *)req;
	Kloudlens__V1__GetProfileResponse *rs;
	struct kl_buf b = { 0 };
	char id[32];
	int r = -ENOENT;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < bl_engine_nworkloads(d->e); i++) {
		struct bl_wview v;
		bl_workload_view(bl_engine_workload(d->e, i), &v);
		bl_profile_id_str(id, sizeof(id), v.profile_id);
		if ((rq->workload && *rq->workload && !strcmp(rq->workload, v.key)) ||
		    (rq->profile_id && *rq->profile_id && v.profile_id && !strcmp(rq->profile_id, id))) {
			/* a learning workload renders what it has so far, under a provisional id */
			r = bl_profile_render(&b, &v, 1, id, d->node, d->off, kl_now_real_ns());
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (r) {
		kl_buf_free(&b);
		snprintf(msg, msglen, "no such workload or profile");
		return r == -ENOENT ? KL_NOT_FOUND : KL_INTERNAL;
	}
	rs = malloc(sizeof(*rs));
	if (!rs) {
		kl_buf_free(&b);
		return KL_INTERNAL;
	}
	kloudlens__v1__get_profile_response__init(rs);
	rs->profile_id = strdup(id);
	kl_buf_putc(&b, 0);
	rs->json = b.p;     /* malloc'd: freed with the message */
	*resp = &rs->base;
	return KL_OK;
}

static const struct kl_rpc_def rpc_defs[] = {
	{ "/kloudlens.v1.AdminService/BaselineReset", &kloudlens__v1__baseline_request__descriptor, rpc_reset },
	{ "/kloudlens.v1.AdminService/BaselinePromote", &kloudlens__v1__baseline_request__descriptor, rpc_promote },
	{ "/kloudlens.v1.AdminService/BaselineActivate", &kloudlens__v1__baseline_request__descriptor, rpc_activate },
	{ "/kloudlens.v1.BaselineService/ListWorkloads", &kloudlens__v1__list_workloads_request__descriptor,
	  rpc_list_workloads },
	{ "/kloudlens.v1.BaselineService/ListProfiles", &kloudlens__v1__list_profiles_request__descriptor,
	  rpc_list_profiles },
	{ "/kloudlens.v1.BaselineService/GetProfile", &kloudlens__v1__get_profile_request__descriptor,
	  rpc_get_profile },
};

/* ---- merge ---------------------------------------------------------------------- */

static int cmd_merge(int argc, char **argv)
{
	const char *outp = NULL, *paths[64];
	size_t n = 0;
	struct kl_buf b = { 0 };
	char err[512];
	int r;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			outp = argv[++i];
		else if (n < 64)
			paths[n++] = argv[i];
	}
	if (n < 2) {
		fprintf(stderr, "usage: kl-baselined merge A.json B.json [...] [-o OUT.json]\n");
		return 2;
	}
	r = bl_profile_merge(paths, n, &b, err, sizeof(err));
	if (r) {
		fprintf(stderr, "kl-baselined merge: %s\n", r == -EINVAL || err[0] ? err : strerror(-r));
		kl_buf_free(&b);
		return 1;
	}
	FILE *f = outp ? fopen(outp, "we") : stdout;
	if (!f || fwrite(b.p, 1, b.len, f) != b.len) {
		fprintf(stderr, "kl-baselined merge: write %s: %s\n", outp ? outp : "stdout", strerror(errno));
		r = 1;
	}
	if (f && f != stdout)
		fclose(f);
	kl_buf_free(&b);
	return r ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------- */

/* What the start-up hook needs: it runs while the process may still be root. */
struct startup {
	struct daemon *d;
	const char *user, *pdir, *rpc_url;
	const struct bl_policy *def;
	struct kl_rpc_server *srv;
	int ino;
};

/*
 * kl_stage_setup()'s before_drop hook: the profiles directory (created and
 * chowned while root, so the unprivileged stage can write it), the
 * profiles and policies on disk, and the RPC socket (chowned to the stage
 * user by kl_rpc_server_start, so the exporter can connect).
 */
static int before_drop(void *ctx)
{
	struct startup *s = ctx;
	struct daemon *d = s->d;
	int err;

	if (mkdir(d->profiles, 0750) < 0 && errno != EEXIST) {
		err = -errno;
		kl_log(COMPONENT, "error", "create profiles directory %s: %s", d->profiles, strerror(-err));
		return err;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(s->user);
		if (pw && chown(d->profiles, pw->pw_uid, pw->pw_gid) < 0)
			kl_log(COMPONENT, "warn", "chown %s: %s", d->profiles, strerror(errno));
	}
	load_profiles(d);
	if (s->pdir) {
		apply_policies(d, s->pdir, s->def);
		s->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (s->ino < 0 ||
		    inotify_add_watch(s->ino, s->pdir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0)
			kl_log(COMPONENT, "warn", "watch %s: %s (policies read once)", s->pdir, strerror(errno));
	}
	/* a missing socket only costs the admin calls: the stage still detects */
	err = kl_rpc_server_start(s->rpc_url, rpc_defs, sizeof(rpc_defs) / sizeof(rpc_defs[0]), d, s->user, &s->srv);
	if (err)
		kl_log(COMPONENT, "warn", "rpc %s: %s (admin calls unavailable)", s->rpc_url, strerror(-err));
	return 0;
}

struct own_ctx {
	struct kl_stage_spec *spec;
	struct daemon *d;
	struct bl_config *cfg;
	struct bl_policy *def;
	const char **pdir, **rpc_url;
};

/* kl_stage_args()' callback: baselined's own options */
static int own_opt(void *ctx, int opt, const char *arg)
{
	struct own_ctx *oc = ctx;
	uint64_t dur;

	switch (opt) {
	case 'S': oc->spec->inputs[1] = *arg ? arg : NULL; return 0;
	case 'n': snprintf(oc->d->node, sizeof(oc->d->node), "%s", arg); return 0;
	case 'p': oc->d->profiles = arg; return 0;
	case 'P': *oc->pdir = arg; return 0;
	case 'r': *oc->rpc_url = arg; return 0;
	case 'W':
	case 'R':
		/* 24h, 90m, 1h30m, 10s */
		if (bl_parse_duration(arg, &dur) || !dur)
			return -EINVAL;
		if (opt == 'W')
			oc->def->window_ns = dur;
		else
			oc->cfg->rate_window_ns = dur;
		return 0;
	case 'M': return kl_parse_u64(arg, 1, &oc->def->min_samples);
	case 'N': return kl_parse_u32(arg, &oc->def->min_pods);
	case 'C': return parse_categories(arg, &oc->def->learn) ? -EINVAL : 0;
	case 'E': oc->def->emit = strcmp(arg, "none") != 0; return 0;
	case 'F': return kl_parse_u64(arg, 1, &oc->cfg->rare_floor);
	case 'X': return kl_parse_u32(arg, &oc->cfg->max_workloads);
	case 'I': return kl_parse_u32(arg, &oc->cfg->max_items);
	default: return -EINVAL;
	}
}

int main(int argc, char **argv)
{
	const char *pdir = NULL, *rpc_url = NULL;
	struct bl_config cfg;
	struct bl_policy def;
	struct daemon d = { .lock = PTHREAD_MUTEX_INITIALIZER, .profiles = "/var/lib/kloudlens/profiles" };
	struct startup su = { .d = &d, .ino = -1 };
	struct shm_consumer *c, *csys;
	struct shm_stats *stats;
	struct kl_stage sg;
	char url[4200];
	struct own_ctx oc;
	int err, rc = 1;
	static const struct option opts[] = {
		KL_STAGE_LONGOPTS,
		{ "syscalls", required_argument, NULL, 'S' }, { "node", required_argument, NULL, 'n' },
		{ "profiles", required_argument, NULL, 'p' }, { "policy-dir", required_argument, NULL, 'P' },
		{ "rpc", required_argument, NULL, 'r' }, { "window", required_argument, NULL, 'W' },
		{ "min-samples", required_argument, NULL, 'M' }, { "min-pods", required_argument, NULL, 'N' },
		{ "categories", required_argument, NULL, 'C' }, { "emit", required_argument, NULL, 'E' },
		{ "rate-window", required_argument, NULL, 'R' }, { "rare-floor", required_argument, NULL, 'F' },
		{ "max-workloads", required_argument, NULL, 'X' }, { "max-items", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	/* without the enriched ring only the syscall set is missing: not a reason to stop */
	struct kl_stage_spec spec = {
		.component = COMPONENT, .user = "kloudlens", .wait_s = 30,
		.inputs = { "intents", "enriched" }, .optional = { false, true },
		.output = "deviations", .out_type = KL_REC_DEVIATION, .ro = SHM_RING_OPTS_INIT,
		.before_drop = before_drop, .ctx = &su,
	};

	if (argc > 1 && !strcmp(argv[1], "merge"))
		return cmd_merge(argc, argv);
	bl_config_default(&cfg);
	bl_policy_default(&def);
	spec.ro.policy = SHM_POLICY_BLOCK;
	spec.ro.capacity = 16u << 20;
	oc = (struct own_ctx){ &spec, &d, &cfg, &def, &pdir, &rpc_url };
	rc = kl_stage_args(argc, argv, opts, &spec, own_opt, &oc, usage);
	if (rc >= 0)
		return rc;
	rc = 1;
	if (!d.node[0] && gethostname(d.node, sizeof(d.node) - 1) < 0)
		d.node[0] = 0;
	snprintf(cfg.node, sizeof(cfg.node), "%s", d.node);
	cfg.policies_only = pdir != NULL;
	d.off = (int64_t)kl_now_real_ns() - (int64_t)kl_now_mono_ns();
	if (!rpc_url) {
		kl_rpc_stage_url(url, sizeof(url), spec.dir, COMPONENT);
		rpc_url = url;
	}

	/* the engine writes through sg.out, which kl_stage_setup() fills in place */
	memset(&sg, 0, sizeof(sg));
	err = bl_engine_new(&cfg, kl_stage_emit, &sg.out, &d.e);
	if (err) {
		kl_log(COMPONENT, "error", "engine: %s", strerror(-err));
		return 1;
	}
	bl_engine_set_policies(d.e, NULL, 0, &def);
	su.user = spec.user;
	su.pdir = pdir;
	su.rpc_url = rpc_url;
	su.def = &def;
	if (kl_stage_setup(&spec, &sg))
		goto out;
	c = sg.cons[0];
	csys = sg.cons[1];
	stats = sg.stats;
	uint64_t *m_int = shm_stats_metric(stats, "kloudlens_baselined_intents_total", NULL, "Intents consumed", SHM_COUNTER);
	uint64_t *m_sys = shm_stats_metric(stats, "kloudlens_baselined_syscalls_total", NULL,
					   "Enriched records consumed (syscall set)", SHM_COUNTER);
	uint64_t *m_inv = shm_stats_metric(stats, "kloudlens_baselined_invalid_total", NULL, "Records rejected", SHM_COUNTER);
	uint64_t *m_dev = shm_stats_metric(stats, "kloudlens_baselined_deviations_total", NULL, "Deviations emitted", SHM_COUNTER);
	uint64_t *m_sup = shm_stats_metric(stats, "kloudlens_baselined_suppressed_total", NULL,
					   "Deviations rate-limited (counted, not emitted)", SHM_COUNTER);
	uint64_t *m_rev = shm_stats_metric(stats, "kloudlens_baselined_rate_evicted_total", NULL,
					   "Rate-limit entries replaced by the cap", SHM_COUNTER);
	uint64_t *m_wl = shm_stats_metric(stats, "kloudlens_baselined_workloads", NULL, "Workloads tracked", SHM_GAUGE);
	uint64_t *m_wdrop = shm_stats_metric(stats, "kloudlens_baselined_workloads_dropped_total", NULL,
					     "Events of workloads over --max-workloads", SHM_COUNTER);
	uint64_t *m_ovf = shm_stats_metric(stats, "kloudlens_baselined_items_overflow_total", NULL,
					   "Items past --max-items (kept only in the sketch)", SHM_COUNTER);
	uint64_t *m_prom = shm_stats_metric(stats, "kloudlens_baselined_promotions_total", NULL, "Profiles taken", SHM_COUNTER);
	uint64_t *m_saved = shm_stats_metric(stats, "kloudlens_baselined_profiles_saved_total", NULL, "Profiles written", SHM_COUNTER);
	uint64_t *m_saverr = shm_stats_metric(stats, "kloudlens_baselined_profile_errors_total", NULL,
					      "Profiles that could not be written", SHM_COUNTER);
	uint64_t *m_emerr = shm_stats_metric(stats, "kloudlens_baselined_emit_errors_total", NULL,
					     "Deviations that could not be written to the ring", SHM_COUNTER);
	uint64_t *m_rtskip = shm_stats_metric(stats, "kloudlens_baselined_runtime_skipped_total", NULL,
					      "Records of a container runtime's init entering a container (not learned, not checked)",
					      SHM_COUNTER);
	kl_log(COMPONENT, "info", "running: %s%s%s -> %s, profiles in %s, rpc %s, as uid %d",
	       spec.inputs[0], csys ? " + " : "", csys ? spec.inputs[1] : "", spec.output, d.profiles, su.srv ? rpc_url : "-", (int)getuid());

	struct shm_rec recs[BATCH];
	bool draining = false;
	for (;;) {
		int n = 0, ns = 0;
		/* the syscall ring first (no wait): it runs ahead of the intents derived from it */
		if (csys) {
			ns = shm_consumer_poll(csys, recs, BATCH, 0);
			if (ns > 0) {
				pthread_mutex_lock(&d.lock);
				for (int i = 0; i < ns; i++)
					bl_engine_feed(d.e, recs[i].type, recs[i].data, recs[i].len);
				pthread_mutex_unlock(&d.lock);
				shm_consumer_release(csys);
			}
		}
		n = shm_consumer_poll(c, recs, BATCH, draining || ns > 0 ? 0 : 200);
		if (n == -EINTR || (n == 0 && ns <= 0 && kl_stage_stop)) {
			if (draining || n == 0)
				break;
			draining = true;
			continue;
		}
		if (n < 0) {
			kl_log(COMPONENT, "error", "ring %s: %s", spec.inputs[0], strerror(-n));
			break;
		}
		pthread_mutex_lock(&d.lock);
		for (int i = 0; i < n; i++)
			bl_engine_feed(d.e, recs[i].type, recs[i].data, recs[i].len);
		save_dirty(&d);
		const struct bl_stats *st = bl_engine_stats(d.e);
		shm_stats_set(m_int, st->intents);
		shm_stats_set(m_sys, st->syscalls);
		shm_stats_set(m_inv, st->invalid);
		shm_stats_set(m_dev, st->deviations);
		shm_stats_set(m_sup, st->suppressed);
		shm_stats_set(m_rev, st->rate_evicted);
		shm_stats_set(m_wl, st->workloads);
		shm_stats_set(m_wdrop, st->workloads_dropped);
		shm_stats_set(m_ovf, st->items_overflow);
		shm_stats_set(m_prom, st->promotions);
		shm_stats_set(m_saved, d.saved);
		shm_stats_set(m_saverr, d.save_errors);
		shm_stats_set(m_emerr, st->emit_errors);
		shm_stats_set(m_rtskip, st->runtime_skipped);
		kl_stage_out_publish(&sg.out);
		pthread_mutex_unlock(&d.lock);
		if (n > 0)
			shm_consumer_release(c);
		if (sg.out.err == -EPIPE)
			break;
		if (su.ino >= 0) {
			char ib[4096];
			if (read(su.ino, ib, sizeof(ib)) > 0)
				apply_policies(&d, pdir, &def);
		}
	}
	/* the RPC thread may change profiles until it is stopped: stop it first */
	kl_rpc_server_stop(su.srv);
	su.srv = NULL;
	pthread_mutex_lock(&d.lock);
	save_dirty(&d);
	kl_stage_out_publish(&sg.out);
	pthread_mutex_unlock(&d.lock);
	rc = 0;
	kl_log(COMPONENT, "info", "stopped");
out:
	kl_rpc_server_stop(su.srv);
	kl_stage_teardown(&sg);
	if (su.ino >= 0)
		close(su.ino);
	bl_engine_free(d.e);
	return rc;
}
