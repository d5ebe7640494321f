/* SPDX-License-Identifier: Apache-2.0 */
/*
 * contractc internals: the Behavioural Contract IR, the observed Profile,
 * the compilers and gap analysis. Everything here is linked into the static
 * library libcontractc that both the CLI and the tests use.
 *
 * Conventions: functions return 0 or -errno; parsers never stop at the first
 * problem but append every finding to a struct cc_diag as
 * "file:line:column: path.to.key: what is wrong"; nothing here prints.
 */
#ifndef KLOUDLENS_CONTRACTC_CC_H
#define KLOUDLENS_CONTRACTC_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* ---------------------------------------------------------------- utils */

struct cc_diag {
	char **msgs;
	size_t n, cap;
};

void cc_diag_add(struct cc_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cc_diag_free(struct cc_diag *d);

/* Growable string used by every text emitter. */
struct cc_buf {
	char *s;
	size_t len, cap;
	int err; /* sticky -ENOMEM */
};

void cc_buf_put(struct cc_buf *b, const char *s);
void cc_buf_putn(struct cc_buf *b, const char *s, size_t n);
void cc_buf_printf(struct cc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *cc_buf_steal(struct cc_buf *b); /* NULL on OOM */
void cc_buf_free(struct cc_buf *b);

char *cc_strdup(const char *s); /* NULL-safe */
int cc_read_file(const char *path, char **data, size_t *len);

/* ------------------------------------------------------------ YAML tree */

enum cc_node_type { CC_SCALAR, CC_SEQ, CC_MAP };

struct cc_node {
	enum cc_node_type type;
	int line, col;     /* 1-based */
	char *str;         /* scalars */
	bool quoted;       /* scalar was quoted: never a bool/int/null */
	struct cc_node **kids; /* seq items; maps: key,value,key,value... */
	size_t n;          /* number of kids (maps: 2 * pairs) */
};

/*
 * cc_yaml_load() - parse one YAML (or JSON) document into a node tree.
 * Anchors/aliases and multi-document streams are rejected: a contract is
 * a single plain document and refusing aliases keeps expansion bounded.
 * Return: 0, or -EINVAL with the reasons in @d, or -ENOMEM.
 */
int cc_yaml_load(const char *file, const char *data, size_t len, struct cc_node **root,
		 struct cc_diag *d);
void cc_node_free(struct cc_node *n);

/* -------------------------------------------------------------- the IR */

struct cc_evidence {
	bool has;
	uint64_t count;
	char *first, *last;
};

enum cc_path_kind { CC_PATH_EXACT, CC_PATH_GLOB, CC_PATH_DIR };

struct cc_path_rule {
	char *path;
	enum cc_path_kind kind;
	char **args; /* process rules only: argv patterns (argv[1..]) */
	size_t nargs;
	char *generalised; /* why the rule is wider than what was observed */
	struct cc_evidence ev;
	int line, col;
};

struct cc_path_list {
	struct cc_path_rule *v;
	size_t n;
};

struct cc_labels {
	char **k, **v;
	size_t n;
};

enum cc_peer_kind { CC_PEER_ANY, CC_PEER_CIDR, CC_PEER_DNS, CC_PEER_SELECTOR };

struct cc_port {
	int port, end_port; /* end_port 0 = single port */
	char proto[8];      /* TCP, UDP, SCTP */
};

struct cc_net_rule {
	enum cc_peer_kind peer;
	char *cidr;
	char *dns;
	bool has_ns;
	char *ns;
	struct cc_labels labels;
	struct cc_port *ports;
	size_t nports;
	char **except; /* imported policies only (NetworkPolicy ipBlock.except) */
	size_t nexcept;
	char *generalised;
	struct cc_evidence ev;
	int line, col;
};

struct cc_net_list {
	struct cc_net_rule *v;
	size_t n;
};

struct cc_name_rule {
	char *name;
	struct cc_evidence ev;
	int line, col;
};

struct cc_name_list {
	struct cc_name_rule *v;
	size_t n;
};

enum cc_sc_action { CC_ACT_ERRNO, CC_ACT_KILL, CC_ACT_LOG, CC_ACT_TRAP };

/* tri-state for pod fields the contract may leave open */
enum { CC_UNSET = -1 };

struct cc_contract {
	char *file;
	char *name, *ns;
	struct cc_labels labels;
	char *df_profile, *df_start, *df_end;
	int64_t df_samples; /* -1 unset */
	bool audit;

	struct {
		char *ns, *container, *image;
		struct cc_labels pod_labels;
	} sel;

	bool has_process;
	struct cc_path_list proc_allow, proc_deny;

	bool has_files;
	struct cc_path_list f_read, f_write, f_exec, f_deny;

	bool has_network, has_egress, has_ingress;
	bool dns; /* name resolution allowed */
	struct cc_net_list egress, ingress;

	bool has_syscalls;
	bool sc_default_allow;
	enum cc_sc_action sc_action;
	int sc_errno;
	struct cc_name_list sc_allow, sc_deny;

	bool has_caps;
	struct cc_name_list caps;

	bool has_pod;
	int run_as_non_root, allow_priv_esc, privileged, host_pid, host_ipc, host_network,
		ro_rootfs;
	bool has_host_paths;
	struct cc_path_list host_paths; /* path rules; args unused; kind EXACT/DIR */
	bool *host_path_ro;
	/*
	 * Only filled when importing a foreign policy for gap analysis: deny
	 * rules the IR has no section for (KubeArmor Block rules).
	 */
	struct cc_path_list f_deny_write;
	struct cc_name_list caps_deny;
	struct cc_net_list egress_deny, ingress_deny;

	char *seccomp_profile;  /* RuntimeDefault | Unconfined | Localhost:<path> */
	char *apparmor_profile; /* RuntimeDefault | Unconfined | Localhost:<name> */
};

/*
 * cc_contract_parse() - parse and check a BehaviorContract document.
 * Return: 0 with *out set, -EINVAL with every problem in @d, or -ENOMEM.
 */
int cc_contract_parse(const char *file, const char *data, size_t len, struct cc_contract **out,
		      struct cc_diag *d);
int cc_contract_from_node(const char *file, const struct cc_node *root, struct cc_contract **out,
			  struct cc_diag *d);
void cc_contract_free(struct cc_contract *c);
/* Render a contract as IR YAML (deterministic). */
char *cc_contract_to_yaml(const struct cc_contract *c, const char *const *header);

extern const char *const cc_capability_names[]; /* NULL-terminated, upper case, no CAP_ */
bool cc_capability_known(const char *name);
bool cc_syscall_known(const char *name);

/* ---------------------------------------------------------- the Profile */

struct cc_obs {
	char *key;  /* path, syscall, capability, DNS name, "uid" as text */
	char *mode; /* files: r, w, x combinations */
	struct cc_evidence ev;
	/* network observations */
	char *addr, *dns;
	bool has_ns;
	char *ns;
	struct cc_labels labels;
	int port;
	char proto[8];
	char **args;
	size_t nargs;
};

struct cc_obs_list {
	struct cc_obs *v;
	size_t n;
};

struct cc_workload {
	char *ns, *container, *image;
	struct cc_labels pod_labels;
	char *w_start, *w_end;
	int64_t s_events, s_pods, s_containers;
	struct cc_obs_list exec, files, egress, ingress, listen, dns, syscalls, caps, uids;
};

struct cc_profile {
	char *file;
	char *id, *generated_at, *node;
	struct cc_workload *w;
	size_t nw;
};

int cc_profile_parse(const char *file, const char *data, size_t len, struct cc_profile **out,
		     struct cc_diag *d);
void cc_profile_free(struct cc_profile *p);

/* ----------------------------------------------------------- compilers */

enum cc_target {
	CC_T_SECCOMP,
	CC_T_APPARMOR,
	CC_T_KUBEARMOR,
	CC_T_CILIUM,
	CC_T_KYVERNO,
	CC_T_REGO,
	CC_T_NETPOL,
	CC_T_PODSECURITY,
	CC_T_COUNT
};

extern const char *const cc_target_names[CC_T_COUNT];
extern const char *const cc_target_suffix[CC_T_COUNT];
int cc_target_from_name(const char *s); /* -1 if unknown */

/*
 * cc_compile() - compile @c for target @t. Rules the target cannot express
 * are named in the output (comment or annotation) and appended to @warn.
 * Return: 0 with *out (malloc'd text) set, or -errno.
 */
int cc_compile(const struct cc_contract *c, enum cc_target t, char **out, struct cc_diag *warn);

/* pieces shared by the compilers */
char *cc_yaml_emit(json_t *doc, const char *const *comments);
char *cc_json_emit(json_t *doc);
json_t *cc_labels_json(const struct cc_labels *l);
const char *cc_pss_level(const struct cc_contract *c, struct cc_diag *why_not_baseline,
			 struct cc_diag *why_not_restricted);

/* -------------------------------------------------------------- match */

bool cc_glob_match(const char *pat, const char *s);
bool cc_path_rule_match(const struct cc_path_rule *r, const char *path);
bool cc_dns_match(const char *pat, const char *name);
bool cc_cidr_match(const char *cidr, const char *addr);
bool cc_valid_cidr(const char *cidr);
bool cc_valid_ip(const char *ip);
bool cc_valid_dns(const char *name, bool allow_wild);
bool cc_labels_subset(const struct cc_labels *want, const struct cc_labels *have);

/* ----------------------------------------------------- generate & gap */

int cc_generate(const struct cc_profile *p, size_t workload, const char *name,
		struct cc_contract **out, struct cc_diag *d);

/*
 * cc_policy_load() - read a policy in any supported format (IR, OCI seccomp
 * JSON, NetworkPolicy, CiliumNetworkPolicy, KubeArmorPolicy, AppArmor) and
 * translate it into the IR for comparison. @format receives a short name.
 */
int cc_policy_load(const char *file, const char *data, size_t len, struct cc_contract **out,
		   const char **format, struct cc_diag *d);

struct cc_gap;
int cc_gap_run(const struct cc_workload *w, const struct cc_contract *policy, struct cc_gap **out);
size_t cc_gap_denied(const struct cc_gap *g);
size_t cc_gap_unused(const struct cc_gap *g);
json_t *cc_gap_json(const struct cc_gap *g, const char *format);
char *cc_gap_text(const struct cc_gap *g, const char *format);
void cc_gap_free(struct cc_gap *g);

/* ------------------------------------------------------------------ CLI */

/* Exit codes of contractc (see docs/contractc.md). */
enum {
	CC_EXIT_OK = 0,
	CC_EXIT_INVALID = 1,  /* input invalid or an operation failed */
	CC_EXIT_USAGE = 2,
	CC_EXIT_DENIED = 3,   /* gap: something observed is denied */
};

int contractc_main(int argc, char **argv, FILE *out, FILE *err);

#endif
