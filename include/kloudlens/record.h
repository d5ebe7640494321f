/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.h - every record type that crosses a KloudLens ring.
 *
 * Shared by the BPF programs, every stage and the tests, so it uses only
 * the kernel's fixed-width types, no pointers, explicit padding, and a
 * _Static_assert on every struct size: a layout change that is not a
 * schema-version bump fails the build instead of corrupting a ring.
 *
 * A record is a fixed C struct followed by a variable tail of TLV fields
 * (struct kl_field + bytes). The tail is read only through the
 * bounds-checked iterator in <kloudlens/recutil.h>; a record whose
 * declared lengths overrun its size is rejected, never read past.
 */
#ifndef KLOUDLENS_RECORD_H
#define KLOUDLENS_RECORD_H

#if defined(__bpf__) || defined(__BPF__)
/* BPF side: vmlinux.h already provides __u8 .. __u64 */
#else
#include <linux/types.h>
#endif

/* Bump on any incompatible change to a struct in this file. */
#define KL_SCHEMA_VERSION 1

/*
 * Registry of record types. Numbers are ABI: never reuse one.
 * 0x000-0x0ff raw (collector), 0x100 enriched, 0x200 intents,
 * 0x300 graph, 0x400 deviations, 0xf00 control.
 */
enum kl_rec_type {
	KL_REC_PAD = 0,             /* libshm wrap padding; never delivered */
	KL_REC_SYSCALL = 1,         /* struct kl_syscall */
	KL_REC_PROC = 2,            /* struct kl_proc: fork/exec/exit/snapshot */
	KL_REC_CONTAINER = 3,       /* struct kl_container */
	KL_REC_DNS = 4,             /* struct kl_dns */
	KL_REC_SOCK = 5,            /* struct kl_sock */
	KL_REC_LOSS = 6,            /* struct kl_loss: counted, not silent, loss */
	KL_REC_ENRICHED = 0x100,    /* struct kl_enriched + embedded raw record */
	KL_REC_INTENT = 0x200,      /* struct kl_intent (kl-intentd) */
	KL_REC_GRAPH = 0x300,       /* struct kl_graph (kl-graphd): edge and session updates */
	KL_REC_DEVIATION = 0x400,   /* struct kl_deviation (kl-baselined) */
	KL_REC_MARK = 0xf00,        /* struct kl_mark: test/bench marker */
};

/* Event categories; they name the eight BPF ring buffers too. */
enum kl_category {
	KL_CAT_CRIT = 0,
	KL_CAT_BULK_FILE = 1,
	KL_CAT_BULK_NET = 2,
	KL_CAT_BULK_PROC = 3,
	KL_CAT_BULK_FILE_META = 4,
	KL_CAT_DNS = 5,
	KL_CAT_PROC_LC = 6,
	KL_CAT_SOCK_LC = 7,
	KL_CAT__COUNT = 8,
};

#define KL_COMM_LEN 16

/*
 * Common head of every event record. Identity of the process is
 * (pid, start_ns): pids are reused, start times are not.
 */
struct kl_event {
	__u64 seq;          /* node-unique, assigned by the collector */
	__u64 ts_ns;        /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 start_ns;     /* thread-group leader start, boot-relative ns */
	__u64 cgroup_id;    /* cgroup v2 id (inode of the v2 directory) */
	__u32 pid;          /* host tgid */
	__u32 tid;          /* host tid */
	__u32 ns_pid;       /* tgid as seen in the task's own pid namespace */
	__u32 ppid;         /* host tgid of the real parent */
	__u32 uid;
	__u32 gid;
	__u32 mnt_ns;       /* mount namespace inum */
	__u32 pid_ns;       /* pid namespace inum */
	char comm[KL_COMM_LEN];
	__u32 flags;        /* KL_EV_* */
	__u32 tail_len;     /* bytes of TLV fields after the fixed struct */
};
_Static_assert(sizeof(struct kl_event) == 88, "kl_event layout is ABI");

#define KL_EV_BOOTSTRAP (1u << 0)   /* synthesised from /proc at start */
#define KL_EV_TRUNCATED (1u << 1)   /* some field in the tail was cut */
#define KL_EV_SELF      (1u << 2)   /* the agent's own process */
#define KL_EV_NEW_PIDNS (1u << 3)   /* FORK: the child was created in another pid namespace than
				     * its parent's: a runtime putting a process into a container
				     * (runc/crun init, runc exec, kubectl exec) */

/*
 * Tail fields. Each is a kl_field header followed by len bytes, packed
 * back to back (no alignment: read with memcpy). KL_FIELD_TRUNC in id
 * marks a bounded copy that was cut.
 */
struct kl_field {
	__u16 id;
	__u16 len;
};
_Static_assert(sizeof(struct kl_field) == 4, "kl_field layout is ABI");

#define KL_FIELD_TRUNC 0x8000u
#define KL_FIELD_ID_MASK 0x7fffu

enum kl_field_id {
	KL_F_PATH = 1,          /* first path argument, as passed */
	KL_F_PATH2 = 2,         /* second path (rename/link target) */
	KL_F_ARGV = 3,          /* NUL-separated argv */
	KL_F_EXE = 4,           /* executable path */
	KL_F_CWD = 5,
	KL_F_SOCKADDR = 6,      /* struct sockaddr bytes (connect/bind/...) */
	KL_F_SOCKADDR2 = 7,     /* peer returned by accept/recvfrom */
	KL_F_DATA = 8,          /* opaque payload (a DNS message) */
	KL_F_FILENAME = 9,      /* execve filename argument */
	KL_F_ENV = 10,          /* reserved: selected environment */
	KL_F_CONTAINER_ID = 16,
	KL_F_CONTAINER_NAME = 17,
	KL_F_IMAGE = 18,
	KL_F_LABELS = 19,       /* "k=v\0k=v\0" */
	KL_F_ANNOTATIONS = 20,  /* "k=v\0k=v\0" */
	KL_F_POD_NAME = 21,
	KL_F_POD_NAMESPACE = 22,
	KL_F_POD_UID = 23,
	KL_F_SANDBOX_ID = 24,
	KL_F_CGROUP_PATH = 25,
	KL_F_BUNDLE = 26,
	KL_F_RUNTIME = 27,
	KL_F_NAME = 28,         /* generic name (memfd, module, ...) */
	KL_F_PARENT_EXE = 29,   /* enriched: the parent's executable */
	KL_F_FD_PATH = 30,      /* enriched: what the first fd argument is (path or socket) */
	KL_F_FD_PATH2 = 31,     /* enriched: the second fd (dup2 target, sendfile/splice in) */
	KL_F_LOCAL_ADDR = 32,   /* enriched: the fd's socket local address (sockaddr bytes) */
	KL_F_PEER_ADDR = 33,    /* enriched: the fd's socket peer address (sockaddr bytes) */
	KL_F_ABS_PATH = 34,     /* enriched: KL_F_PATH made absolute (cwd or dirfd) */
	KL_F_ABS_PATH2 = 35,    /* enriched: KL_F_PATH2 made absolute */
	KL_F_FDS = 36,          /* raw: __s32[2] written by pipe/pipe2/socketpair (read at exit) */
	KL_F_NODE = 37,         /* intent: node (host) name */
	KL_F_DNS_NAME = 38,     /* intent: DNS question name ("example.com") */
	KL_F_DNS_ANSWERS = 39,  /* intent: NUL-separated answers (addresses, CNAME targets) */
	/* graph (kl-graphd): 40..47 */
	KL_F_GRAPH_FROM = 40,   /* graph: label of the from node (exe, path, "ip:port", unix path) */
	KL_F_GRAPH_TO = 41,     /* graph: label of the to node */
	KL_F_GRAPH_FROM_CTR = 42, /* graph: container id of the from process ("" on the host) */
	KL_F_GRAPH_TO_CTR = 43, /* graph: container id of the to process */
	KL_F_GRAPH_SEQS = 44,   /* graph: __u64[] enriched seqs behind the edge (newest last, bounded) */
	KL_F_GRAPH_POD = 45,    /* graph: "namespace/pod" of the session, when in a pod */
	/* deviation (kl-baselined): 48..55 */
	KL_F_DEV_WORKLOAD = 48, /* deviation: workload key ("ns/owner/container@image", "host:/usr/bin/x") */
	KL_F_DEV_PROFILE = 49,  /* deviation: profile id text ("prof-<16 hex>") */
	KL_F_DEV_ITEM = 50,     /* deviation: the item not covered (path, exe, "addr:port/proto", name, syscall) */
	KL_F_DEV_PARENT = 51,   /* deviation: NEW_TRANSITION: the parent executable of the transition */
	KL_F_DEV_REASON = 52,   /* deviation: one line for people ("new executable /bin/nc") */
	KL_F__MAX = 64,
};

/* --- raw syscall event: entry paired with exit ------------------------ */

#define KL_SC_NO_EXIT    (1u << 0)  /* never returned (exit, exec in old image) */
#define KL_SC_ARGS_TRUNC (1u << 1)  /* a user-memory copy was bounded */
#define KL_SC_ENTRY_ONLY (1u << 2)  /* exit lost: task died mid-call */

struct kl_syscall {
	struct kl_event ev;
	__u64 args[6];          /* raw register arguments at entry */
	__s64 ret;              /* return value (-errno on failure) */
	__u64 duration_ns;      /* exit ts - entry ts; 0 if KL_SC_NO_EXIT */
	__u32 nr;               /* x86_64 syscall number */
	__u16 category;         /* enum kl_category */
	__u16 sflags;           /* KL_SC_* */
};
_Static_assert(sizeof(struct kl_syscall) == 160, "kl_syscall layout is ABI");

/* --- process lifecycle ---------------------------------------------- */

enum kl_proc_kind {
	KL_PROC_FORK = 1,       /* ev = child; parent_* = parent */
	KL_PROC_EXEC = 2,       /* ev = the process after exec */
	KL_PROC_EXIT = 3,       /* ev = the exiting thread group */
	KL_PROC_SNAPSHOT = 4,   /* bootstrap: already running at start */
};

struct kl_proc {
	struct kl_event ev;
	__u32 kind;             /* enum kl_proc_kind */
	__u32 parent_pid;
	__u64 parent_start_ns;
	__s32 exit_code;        /* wait(2)-style status for EXIT */
	__u32 child_tid;        /* FORK: new thread id (== pid for processes) */
	__u32 old_pid;          /* EXEC: pid before exec (de_thread) */
	__u32 nthreads;
	__u32 net_ns;
	__u32 ipc_ns;
	__u32 uts_ns;
	__u32 euid;
	__u64 cap_effective;
};
_Static_assert(sizeof(struct kl_proc) == 144, "kl_proc layout is ABI");

/* --- container lifecycle --------------------------------------------- */

enum kl_container_kind {
	KL_CTR_START = 1,
	KL_CTR_STOP = 2,
	KL_CTR_SNAPSHOT = 3,    /* already running at collector start */
};

enum kl_runtime {
	KL_RT_UNKNOWN = 0,
	KL_RT_CONTAINERD = 1,
	KL_RT_RUNC = 2,
	KL_RT_CRUN = 3,
	KL_RT_CRIO = 4,
	KL_RT_DOCKER = 5,
};

struct kl_container {
	struct kl_event ev;     /* ev.pid = init pid; ev.cgroup_id = container's */
	__u32 kind;             /* enum kl_container_kind */
	__u32 runtime;          /* enum kl_runtime */
	__u32 init_pid;
	__u32 mnt_ns;
	__u32 pid_ns;
	__u32 net_ns;
	__u32 ipc_ns;
	__u32 uts_ns;
	__s32 exit_code;
	__u32 _pad;
};
_Static_assert(sizeof(struct kl_container) == 128, "kl_container layout is ABI");

/* --- DNS message seen by cgroup_skb ------------------------------------ */

#define KL_DIR_EGRESS  1
#define KL_DIR_INGRESS 2

struct kl_dns {
	struct kl_event ev;     /* owning process where known, else pid 0 */
	__u8 direction;         /* KL_DIR_* */
	__u8 proto;             /* IPPROTO_UDP / IPPROTO_TCP */
	__u16 family;           /* AF_INET / AF_INET6 */
	__u16 sport;            /* host byte order */
	__u16 dport;
	__u8 saddr[16];         /* v4 in the first 4 bytes */
	__u8 daddr[16];
	__u64 sock_cookie;
	__u32 msg_len;          /* full DNS message length (tail may be cut) */
	__u32 _pad;
};
_Static_assert(sizeof(struct kl_dns) == 144, "kl_dns layout is ABI");

/* --- socket lifecycle ------------------------------------------------ */

enum kl_sock_kind {
	KL_SOCK_STATE = 1,      /* TCP state change */
	KL_SOCK_CLOSE = 2,
};

struct kl_sock {
	struct kl_event ev;
	__u32 kind;
	__u16 family;
	__u16 proto;
	__u16 sport;
	__u16 dport;
	__u16 old_state;
	__u16 new_state;
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 sock_cookie;
	__u64 bytes_sent;
	__u64 bytes_received;
};
_Static_assert(sizeof(struct kl_sock) == 160, "kl_sock layout is ABI");

/* --- counted loss ---------------------------------------------------- */

enum kl_loss_where {
	KL_LOSS_BPF_RESERVE = 1,    /* bpf_ringbuf_reserve failed */
	KL_LOSS_SHED = 2,           /* adaptive downgrade shed it */
	KL_LOSS_RING = 3,           /* libshm ring full, drop policy */
	KL_LOSS_PENDING = 4,        /* entry/exit pairing table full */
};

struct kl_loss {
	struct kl_event ev;
	__u32 where;                /* enum kl_loss_where */
	__u32 category;             /* enum kl_category */
	__u64 count;                /* lost since the previous loss record */
};
_Static_assert(sizeof(struct kl_loss) == 104, "kl_loss layout is ABI");

/* --- enriched event (kl-enricher -> enriched ring) ---------------------- */

/*
 * The raw record is embedded whole right after this struct (so consumers
 * can read its fixed part in place), padded to 8, and the enrichment
 * fields follow as TLV. ev is a copy of the raw record's head, with
 * ev.tail_len covering embedded record + padding + TLV fields.
 */
#define KL_EN_PROC_KNOWN  (1u << 0)  /* process seen by fork/exec/bootstrap */
#define KL_EN_PROC_STUB   (1u << 1)  /* process first seen by this event */
#define KL_EN_CTR_KNOWN   (1u << 2)  /* in a known container */
#define KL_EN_CTR_BY_NS   (1u << 3)  /* matched by namespace, not cgroup id */
#define KL_EN_FD_RESOLVED (1u << 4)
#define KL_EN_FD2_RESOLVED (1u << 5)
#define KL_EN_EXITED      (1u << 6)  /* process already exited (late event, grace) */
#define KL_EN_ENTERED     (1u << 7)  /* the process still runs the image of the runtime that put it
				      * into its container (forked across pid namespaces, no exec
				      * since): runtime setup, not the workload (docs/enricher.md) */

enum kl_fd_kind {
	KL_FD_UNKNOWN = 0,
	KL_FD_FILE = 1,
	KL_FD_SOCK_INET = 2,
	KL_FD_SOCK_INET6 = 3,
	KL_FD_SOCK_UNIX = 4,
	KL_FD_SOCK_OTHER = 5,
	KL_FD_PIPE = 6,
	KL_FD_MEMFD = 7,
};

struct kl_enriched {
	struct kl_event ev;
	__u16 raw_type;             /* enum kl_rec_type of the embedded record */
	__u16 eflags;               /* KL_EN_* */
	__u16 fd_kind;              /* enum kl_fd_kind of the first fd argument */
	__u16 fd2_kind;
	__u32 raw_len;              /* bytes of the embedded raw record */
	__u32 parent_pid;
	__u64 parent_start_ns;
	__u64 ctr_cgroup_id;        /* the container's cgroup id; 0 on the host */
};
_Static_assert(sizeof(struct kl_enriched) == 120, "kl_enriched layout is ABI");

/* --- intent (kl-intentd -> intents ring) ------------------------------ */

/*
 * One intent folds one or more enriched events of one process (docs/intents.md).
 * ev is the process (pid, start_ns, cgroup, comm, uid ...) with ev.seq the
 * intent's own sequence number (assigned by kl-intentd, 1-based) and
 * ev.ts_ns the emission time (event time of the event that caused it).
 * first_seq/last_seq/count trace it back to the enriched events.
 * Tail: KL_F_NODE, the process context (exe, argv, cwd, parent_exe,
 * container_*, image, pod_*), then kind-specific fields (path, path2,
 * local_addr, peer_addr, dns_name, dns_answers, name).
 */
enum kl_intent_kind {
	KL_INTENT_PROCESS_START = 1,
	KL_INTENT_PROCESS_EXIT = 2,
	KL_INTENT_FILE_ACCESS = 3,
	KL_INTENT_FILE_META_CHANGE = 4,
	KL_INTENT_NETWORK_EXCHANGE = 5,
	KL_INTENT_NETWORK_LISTEN = 6,
	KL_INTENT_DNS_QUERY = 7,
	KL_INTENT_PRIVILEGE_CHANGE = 8,
	KL_INTENT_NAMESPACE_CHANGE = 9,
	KL_INTENT_MODULE_LOAD = 10,
	KL_INTENT_BPF_LOAD = 11,
	KL_INTENT_PTRACE = 12,
	KL_INTENT_EXEC_FROM_MEMORY = 13,
	KL_INTENT_SIGNAL = 14,
	KL_INTENT_IPC = 15,
	KL_INTENT__COUNT = 16,
};

#define KL_IN_FAILED     (1u << 0)  /* result is -errno */
#define KL_IN_CONTINUING (1u << 1)  /* window emission: the fd is still open, more follows */
#define KL_IN_AT_EXIT    (1u << 2)  /* flushed because the process exited with it open */
#define KL_IN_EVICTED    (1u << 3)  /* flushed early by a state cap */
#define KL_IN_INHERITED  (1u << 4)  /* its start (open/fork) was not seen: inherited or bootstrap */
#define KL_IN_CONNECT    (1u << 5)  /* NetworkExchange: this side connected */
#define KL_IN_ACCEPT     (1u << 6)  /* NetworkExchange: this side accepted */
#define KL_IN_DNS_LINKED (1u << 7)  /* peer was an answer of an earlier DNSQuery (arg[3]) */
#define KL_IN_ASYNC      (1u << 8)  /* non-blocking connect (EINPROGRESS) */
#define KL_IN_TIMEOUT    (1u << 9)  /* DNSQuery: no response in time */
#define KL_IN_SHUTDOWN   (1u << 10) /* flushed at kl-intentd shutdown */
#define KL_IN_ENTERED    (1u << 11) /* the process was a runtime's init entering a container (KL_EN_ENTERED) */

/* decoded access flags (FileAccess) */
#define KL_IA_READ      (1u << 0)
#define KL_IA_WRITE     (1u << 1)
#define KL_IA_CREATE    (1u << 2)
#define KL_IA_TRUNCATE  (1u << 3)
#define KL_IA_APPEND    (1u << 4)
#define KL_IA_EXEC      (1u << 5)   /* mapped PROT_EXEC (loader) or exec'd */
#define KL_IA_DIRECTORY (1u << 6)
#define KL_IA_CLOEXEC   (1u << 7)
#define KL_IA_NONBLOCK  (1u << 8)
#define KL_IA_EXCL      (1u << 9)
#define KL_IA_PATH      (1u << 10)  /* O_PATH */
#define KL_IA_TMPFILE   (1u << 11)
#define KL_IA_SYNC      (1u << 12)

struct kl_intent {
	struct kl_event ev;
	__u16 kind;                 /* enum kl_intent_kind */
	__u16 op;                   /* syscall nr that defines it (meta, priv, ns, ...), else 0 */
	__u32 iflags;               /* KL_IN_* */
	__u64 first_seq;            /* enriched event seqs folded: first, last, how many */
	__u64 last_seq;
	__u64 count;
	__u64 first_ts;
	__u64 last_ts;
	__s64 result;               /* 0 or -errno (the outcome: open, connect, I/O error, rcode) */
	__u64 bytes_in;             /* sum of positive read/recv return values */
	__u64 bytes_out;
	__u64 ops_in;               /* read-side calls (messages) */
	__u64 ops_out;
	__u32 dflags;               /* KL_IA_* for FileAccess */
	__u32 parent_pid;
	__u64 parent_start_ns;
	__u64 ctr_cgroup_id;        /* the container's cgroup id; 0 on the host */
	__u64 arg[4];               /* kind-specific scalars, see docs/intents.md */
};
_Static_assert(sizeof(struct kl_intent) == 232, "kl_intent layout is ABI");

/* --- graph (kl-graphd -> graph ring) ------------------------------------ */

/*
 * One record per graph update (docs/graph.md): an edge created or
 * updated, or a session opened / closed / evicted. The numbering of
 * kinds is the protobuf's (GraphEdge.Kind, GraphNode.Kind), so the
 * exporter converts by copying.
 *
 * Node ids are stable hashes, the same in every record and every query
 * of one node: a process is (host pid, start_ns), a file its path inside
 * its mount namespace, an endpoint its address. Session ids are the node
 * id of the session's root process; the exporter and klctl print both as
 * 16 lowercase hex digits.
 */
enum kl_graph_op {
	KL_GOP_EDGE = 1,            /* an edge was created (KL_GF_NEW) or updated */
	KL_GOP_SESSION_OPEN = 2,    /* a session started: from = its root process, kind 0 */
	KL_GOP_SESSION_CLOSE = 3,   /* its last process exited and the grace passed */
	KL_GOP_SESSION_EVICT = 4,   /* dropped (retention or a cap); its nodes may go too */
};

enum kl_graph_node_kind {       /* == GraphNode.Kind */
	KL_GN_PROCESS = 1,
	KL_GN_FILE = 2,
	KL_GN_SOCKET = 3,           /* a socketpair */
	KL_GN_CONTAINER = 4,
	KL_GN_PIPE = 5,
	KL_GN_ENDPOINT = 6,         /* ip:port or a unix socket path without a matched peer */
};

enum kl_graph_edge_kind {       /* == GraphEdge.Kind; 3..7 are the proto's older coarse kinds, unused */
	KL_GE_FORK = 1,             /* parent -> child */
	KL_GE_EXEC = 2,             /* process -> itself; from label = old exe, to label = new exe */
	KL_GE_FILE_READ = 8,        /* process -> file */
	KL_GE_FILE_WRITE = 9,       /* process -> file */
	KL_GE_FILE_EXEC = 10,       /* process -> file (the image it exec'd) */
	KL_GE_IPC = 11,             /* process -> process (pipe/socketpair/unix), or -> pipe node if unmatched */
	KL_GE_NET_CONNECT = 12,     /* connecting process -> accepting process, or -> endpoint */
	KL_GE_NET_ACCEPT = 13,      /* accepting process -> connecting process, or -> endpoint */
	KL_GE_SIGNAL = 14,          /* sender -> target; arg = signal number */
	KL_GE_PTRACE = 15,          /* tracer -> tracee; arg = ptrace request */
	KL_GE_FILE_SHARED = 16,     /* writer process -> reader process through one file;
	                             * to label = the path, arg = the writer's file node id */
	KL_GE__COUNT = 17,
};

#define KL_GF_NEW          (1u << 0)  /* first record of this edge */
#define KL_GF_CROSS_CTR    (1u << 1)  /* the two process ends are in different containers (host counts as one) */
#define KL_GF_MATCHED      (1u << 2)  /* IPC/NET: the other end was matched to a process on this node */
#define KL_GF_LOOPBACK     (1u << 3)  /* NET over a loopback address */
#define KL_GF_IPC_PIPE     (1u << 4)  /* IPC: a pipe */
#define KL_GF_IPC_SOCKPAIR (1u << 5)  /* IPC: a socketpair */
#define KL_GF_IPC_UNIX     (1u << 6)  /* IPC: a unix-socket connection */
#define KL_GF_FAILED       (1u << 7)  /* the syscall behind it failed (kept: an attempt is a fact) */
#define KL_GF_SESSION_EXEC (1u << 8)  /* SESSION_*: entered a container from outside (runc exec) */
#define KL_GF_SESSION_CTR  (1u << 9)  /* SESSION_*: a container's init */
#define KL_GF_SESSION_SETSID (1u << 10) /* SESSION_*: a setsid leader on the host */
#define KL_GF_RUNTIME      (1u << 11) /* every event behind it came from a container runtime's init
					 * setting the container up (KL_EN_ENTERED): not the workload */

struct kl_graph {
	struct kl_event ev;         /* the from process (pid, start_ns, cgroup, comm, uid, ns...);
	                             * ev.seq = graph record number (kl-graphd, 1-based),
	                             * ev.ts_ns = event time of this update */
	__u16 op;                   /* enum kl_graph_op */
	__u16 kind;                 /* enum kl_graph_edge_kind (0 for session records) */
	__u16 from_kind;            /* enum kl_graph_node_kind */
	__u16 to_kind;
	__u32 gflags;               /* KL_GF_* */
	__u32 to_pid;               /* to process: host pid (0 when to is not a process) */
	__u64 to_start_ns;          /* to process: start time */
	__u64 from_id;              /* node ids (see above) */
	__u64 to_id;
	__u64 session_id;           /* session of the from process (0: none known) */
	__u64 to_session_id;        /* session of the to process, 0 when not a process */
	__u64 first_ns;             /* edge: first and last event time, events folded */
	__u64 last_ns;              /* session: start (first_ns) and end (last_ns, 0 while open) */
	__u64 count;                /* session: processes seen in it */
	__u64 first_seq;            /* enriched seq of the first and of the latest event behind it */
	__u64 last_seq;
	__u64 from_ctr_cgroup_id;   /* containers of the two ends (0 = host) */
	__u64 to_ctr_cgroup_id;
	__u64 arg;                  /* SIGNAL: signal; PTRACE: request; NET: port; FILE_SHARED: file node id */
};
_Static_assert(sizeof(struct kl_graph) == 208, "kl_graph layout is ABI");
/* tail: graph_from, graph_to, graph_from_ctr, graph_to_ctr, graph_seqs, graph_pod */

/* --- deviation (kl-baselined -> deviations ring) --- */

/*
 * One deviation: something a promoted Profile does not cover (docs/baseline.md).
 * ev is the process of the intent (or enriched event) that triggered it,
 * copied whole (pid, start_ns, uid, cgroup, namespaces, comm), except
 * ev.seq = the deviation's own sequence number (1-based per kl-baselined
 * run) and ev.ts_ns = event time of the trigger.
 * Tail, in this order: KL_F_NODE, the trigger's process context as the
 * intent carried it (exe, argv, parent_exe, container_id, container_name,
 * image, pod_name, pod_namespace, pod_uid; absent fields omitted), then
 * KL_F_DEV_WORKLOAD, KL_F_DEV_PROFILE, KL_F_DEV_ITEM, KL_F_DEV_PARENT
 * (NEW_TRANSITION only), KL_F_DEV_REASON.
 */
enum kl_deviation_kind {
	KL_DEV_NEW_EXEC = 1,        /* item: executable path */
	KL_DEV_NEW_TRANSITION = 2,  /* item: child exe, KL_F_DEV_PARENT: parent exe (both known, pair new) */
	KL_DEV_NEW_FILE = 3,        /* item: path (generalised); access: the modes not covered */
	KL_DEV_NEW_EGRESS = 4,      /* item: "addr:port/PROTO" (or "unix:/path"); number: port */
	KL_DEV_NEW_INGRESS = 5,     /* item: "port/PROTO" local port accepted on; number: port */
	KL_DEV_NEW_LISTEN = 6,      /* item: "port/PROTO" (or "unix:/path"); number: port */
	KL_DEV_NEW_DNS = 7,         /* item: the DNS name */
	KL_DEV_NEW_SYSCALL = 8,     /* item: syscall name; number: nr (from the enriched ring) */
	KL_DEV_PRIVILEGE = 9,       /* item: "uid N" (new effective uid; number: N) or "setuid(N)" style call */
	KL_DEV_RARE = 10,           /* item in the profile (or its sketch) but below the frequency floor;
				     * number: the kind it is rare in; estimate: its learned count */
	KL_DEV__COUNT = 11,
};

#define KL_DV_ATTEMPT  (1u << 0)    /* the trigger failed (intent KL_IN_FAILED): reported, never learned */
#define KL_DV_REPEAT   (1u << 1)    /* not the first emission of this (workload, kind, item) */
#define KL_DV_SYSCALL  (1u << 2)    /* triggered by an enriched event: intent_seq is 0 */

/* severity: the numbers of DeviationEvent.Severity (proto) */
#define KL_DEV_SEV_INFO     1
#define KL_DEV_SEV_LOW      2
#define KL_DEV_SEV_MEDIUM   3
#define KL_DEV_SEV_HIGH     4
#define KL_DEV_SEV_CRITICAL 5

struct kl_deviation {
	struct kl_event ev;
	__u16 kind;                 /* enum kl_deviation_kind */
	__u16 severity;             /* KL_DEV_SEV_* */
	__u32 dflags;               /* KL_DV_* */
	__u32 score;                /* 0..1000: 1000 never seen; RARE: 1000 * (1 - estimate/floor) */
	__u16 intent_kind;          /* enum kl_intent_kind of the trigger; 0 for a syscall */
	__u16 access;               /* NEW_FILE: KL_IA_READ|WRITE|EXEC bits the profile lacks */
	__u64 profile_id;           /* the profile's id as a number; text form in KL_F_DEV_PROFILE */
	__u64 workload_id;          /* hash of the workload key (text in KL_F_DEV_WORKLOAD) */
	__u64 intent_seq;           /* ev.seq of the triggering intent (0 with KL_DV_SYSCALL) */
	__u64 first_seq;            /* enriched events behind it: the intent's first_seq/last_seq, */
	__u64 last_seq;             /* or the syscall event's seq in both */
	__u64 occurrences;          /* times (workload, kind, item) was seen since activation, this one included */
	__u64 suppressed;           /* occurrences rate-limited since the previous emission of it */
	__u64 number;               /* kind-specific scalar (port, syscall nr, uid), else 0 */
	__u64 estimate;             /* RARE: learned count (count-min estimate); else 0 */
	__u64 ctr_cgroup_id;        /* the container's cgroup id; 0 on the host */
};
_Static_assert(sizeof(struct kl_deviation) == 184, "kl_deviation layout is ABI");

/* --- marker: lets tests and benches fence a stream -------------------- */

struct kl_mark {
	struct kl_event ev;
	__u64 id;
	__u64 value;
};
_Static_assert(sizeof(struct kl_mark) == 104, "kl_mark layout is ABI");

#endif /* KLOUDLENS_RECORD_H */
