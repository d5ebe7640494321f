#!/usr/bin/env node
// Generates deployments/kubernetes/crds/*.yaml (the four CRDs). Edit this,
// then: NODE_PATH=tests/contractc/node/node_modules node deployments/kubernetes/gen-crds.js deployments/kubernetes/crds
// tests/deployments (deployments-crds-structural) fails when the YAML and this differ.
'use strict';
const yaml = require('js-yaml'); const fs = require('fs');
const out = process.argv[2];
if (!out) { console.error("usage: gen-crds.js OUTDIR"); process.exit(2); }
const DNS_LABEL = { type: 'string', maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' };
const labelMap = (d) => ({ type: 'object', description: d, additionalProperties: { type: 'string', maxLength: 63, pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$' } });
const DURATION = { type: 'string', pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$' };
const str = (d, extra = {}) => Object.assign({ type: 'string', description: d }, extra);
const bool = (d, def) => Object.assign({ type: 'boolean', description: d }, def === undefined ? {} : { default: def });
const int = (d, extra = {}) => Object.assign({ type: 'integer', description: d }, extra);
const obj = (d, props, req, extra = {}) => Object.assign({ type: 'object', description: d, properties: props }, req && req.length ? { required: req } : {}, extra);
const arr = (d, items, extra = {}) => Object.assign({ type: 'array', description: d, items }, extra);
const TS = { type: 'string', format: 'date-time' };
const conditions = arr('Standard Kubernetes conditions.', obj('', {
  type: str('Condition type, e.g. Ready or Applied.', { maxLength: 316 }),
  status: str('', { enum: ['True', 'False', 'Unknown'] }),
  observedGeneration: int('', { format: 'int64', minimum: 0 }),
  lastTransitionTime: Object.assign({ description: 'When status last changed.' }, TS),
  reason: str('CamelCase reason.', { maxLength: 1024, pattern: '^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$' }),
  message: str('Human-readable detail.', { maxLength: 32768 }),
}, ['type', 'status']), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
for (const k of ['description']) if (conditions.items[k] === '') delete conditions.items[k];

function crd(kind, plural, scope, short, schema, columns, status) {
  const singular = kind.toLowerCase();
  const v = { name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: schema } };
  if (status) v.subresources = { status: {} };
  if (columns) v.additionalPrinterColumns = columns;
  return { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.kloudlens.io`, labels: { 'app.kubernetes.io/name': 'kloudlens', 'app.kubernetes.io/component': 'control-plane' } },
    spec: { group: 'kloudlens.io', scope, names: { kind, listKind: kind + 'List', plural, singular, shortNames: short, categories: ['kloudlens'] }, versions: [v] } };
}
function root(desc, spec, specReq, status) {
  const p = { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec };
  if (status) p.status = status;
  return { type: 'object', description: desc, required: specReq ? ['spec'] : [], properties: p };
}
const CATS = ['crit', 'bulk_file', 'bulk_net', 'bulk_proc', 'bulk_file_meta', 'dns', 'proc_lc', 'sock_lc'];
const labelSelector = obj('A Kubernetes label selector over pod labels; all terms must match. Empty = every pod.', {
  matchLabels: labelMap('Labels the pod must carry.'),
  matchExpressions: arr('Set-based requirements.', obj('', {
    key: str('Label key.', { minLength: 1, maxLength: 317 }),
    operator: str('', { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
    values: arr('Values for In and NotIn; empty for Exists and DoesNotExist.', { type: 'string', maxLength: 63 }),
  }, ['key', 'operator'])),
}, [], { 'x-kubernetes-map-type': 'atomic' });
delete labelSelector.properties.matchExpressions.items.description;
const statusCommon = { observedGeneration: int('Generation the agent last acted on.', { format: 'int64', minimum: 0 }), conditions };

// ---------------------------------------------------------------- HookSubscription
const pct = (d) => int(d, { minimum: 1, maximum: 100 });
const hook = crd('HookSubscription', 'hooksubscriptions', 'Cluster', ['klhook'], root(
  'HookSubscription selects which syscall categories the collector traces, for which workloads, and how the bulk categories are sampled. The agent applies the union of all HookSubscriptions; with none, the collector\'s built-in default applies (every category, no sampling).',
  obj('What to trace.', {
    categories: arr('Syscall categories: the collector\'s eight BPF rings (docs/events.md). crit = exec, kill, ptrace, set*id, capset, prctl, unshare/setns, mount, modules, bpf, memfd_create, PROT_EXEC mappings; bulk_file = read/write/sendfile/splice; bulk_file_meta = open/close/dup/rename/unlink/mkdir/link/chmod/chown/truncate/mknod; bulk_net = send*/recv*; bulk_proc = pipe/pipe2; sock_lc = socket/connect/accept/bind/listen/shutdown; proc_lc = fork/clone/exit and sched_process_*; dns = DNS messages (cgroup_skb).',
      str('', { enum: CATS }), { minItems: 1, maxItems: 8, 'x-kubernetes-list-type': 'set' }),
    syscalls: arr('Optional: trace only these syscalls of the chosen categories (names as in asm/unistd_64.h, without sys_). Omitted = every syscall of the categories.',
      str('', { minLength: 1, maxLength: 64, pattern: '^[a-z_][a-z0-9_]*$' }), { minItems: 1, maxItems: 512, 'x-kubernetes-list-type': 'set' }),
    selector: obj('Which processes. Omitted = everything on the node, host processes included. Within the selector every field given must match (AND); list entries are alternatives (OR).', {
      namespaces: arr('Kubernetes namespaces (docker mode: the io.kubernetes.pod.namespace label, or none).', DNS_LABEL, { minItems: 1, 'x-kubernetes-list-type': 'set' }),
      excludeNamespaces: arr('Namespaces never traced (wins over namespaces).', DNS_LABEL, { minItems: 1, 'x-kubernetes-list-type': 'set' }),
      pods: labelSelector,
      containers: arr('Container names (in a pod spec, or docker --name).', str('', { minLength: 1, maxLength: 253, pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }), { minItems: 1, 'x-kubernetes-list-type': 'set' }),
      hostProcesses: bool('Also trace processes outside any container.', false),
    }, [], { minProperties: 1 }),
    sampling: obj('Sampling of the data-path categories bulk_file, bulk_net and bulk_file_meta (the ones the collector may shed). crit, bulk_proc, proc_lc, sock_lc and dns are never sampled. Sampling bulk_file_meta leaves some fds unresolved downstream.', {
      percent: pct('Percentage of events kept in every sampled category (default 100).'),
      perCategory: obj('Per-category percentage; overrides percent.', {
        bulk_file: pct(''), bulk_net: pct(''), bulk_file_meta: pct(''),
      }, [], { minProperties: 1 }),
      maxEventsPerSecond: int('Node-wide ceiling on sampled events per second across the sampled categories; 0 = no ceiling. Above it the collector sheds as under ring pressure, and counts what it sheds.', { format: 'int64', minimum: 0, default: 0 }),
    }, [], { minProperties: 1 }),
  }, ['categories']), true,
  obj('Written by the agent.', Object.assign({
    nodesApplied: int('Nodes whose in-kernel filters reflect this generation.', { minimum: 0 }),
  }, statusCommon))),
  [{ name: 'Categories', type: 'string', jsonPath: '.spec.categories' }, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }], true);
for (const k of ['bulk_file', 'bulk_net', 'bulk_file_meta']) delete hook.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.sampling.properties.perCategory.properties[k].description;

// ---------------------------------------------------------------- BaselinePolicy
const workloadSel = (d) => obj(d, {
  podLabels: labelMap('Pod labels; all must match (docker mode: container labels).'),
  container: str('Container name.', { minLength: 1, maxLength: 253, pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }),
  image: str('Image reference, e.g. registry.example.com/shop/web:1.4 (without tag = any tag).', { minLength: 1, maxLength: 512, pattern: '^[^\\s]+$' }),
}, [], { minProperties: 1 });
const baseline = crd('BaselinePolicy', 'baselinepolicies', 'Namespaced', ['klbase'], root(
  'BaselinePolicy tells kl-baselined which workload to learn, for how long and what, and what to do once the Profile is taken: from then on only deviations from it are emitted.',
  obj('The learning policy.', {
    selector: workloadSel('The workload, within this object\'s namespace (docker mode: the namespace is ignored).'),
    learning: obj('The learning window.', {
      window: Object.assign({ description: 'How long to learn, e.g. 24h, 90m, 1h30m.' }, DURATION),
      minSamples: int('Events the workload must produce in the window before the Profile is taken; with fewer, the window is extended (status.phase InsufficientSamples) instead of freezing a thin baseline.', { format: 'int64', minimum: 1, default: 1000 }),
      minPods: int('Distinct pods (docker mode: containers) that must have been observed.', { minimum: 1, default: 1 }),
    }, ['window']),
    learn: obj('What goes into the Profile. Omitted = everything (all true, every file mode).', {
      executables: bool('Programs executed (path, argv shape).', true),
      files: obj('Files opened.', {
        enabled: bool('', true),
        modes: arr('Access modes to learn.', str('', { enum: ['read', 'write', 'exec'] }), { minItems: 1, maxItems: 3, 'x-kubernetes-list-type': 'set' }),
      }),
      network: obj('Network peers and sockets.', {
        egress: bool('Outgoing connections and datagrams (peer address, port, protocol).', true),
        ingress: bool('Accepted connections and received datagrams.', true),
        listen: bool('Listening ports.', true),
      }),
      dns: bool('Names resolved.', true),
      syscalls: bool('Syscalls made, with counts.', true),
      capabilities: bool('Capabilities exercised.', true),
      uids: bool('Effective uids the processes ran as.', true),
    }),
    afterLearning: obj('What happens once the Profile is taken.', {
      emit: str('deviations: emit only what the Profile does not cover (default); none: keep the Profile, emit nothing.', { enum: ['deviations', 'none'], default: 'deviations' }),
      generateContract: bool('Also derive a BehaviorContract from the Profile (contractc generate), created in this namespace.', false),
      contractMode: str('spec.mode of the generated contract.', { enum: ['audit', 'enforce'], default: 'audit' }),
    }),
    relearnEvery: Object.assign({ description: 'Take a fresh Profile this often (e.g. 168h). Omitted = learn once.' }, DURATION),
  }, ['selector', 'learning']), true,
  obj('Written by kl-baselined.', Object.assign({
    phase: str('', { enum: ['Pending', 'Learning', 'InsufficientSamples', 'Ready'] }),
    windowStart: Object.assign({ description: '' }, TS), windowEnd: Object.assign({ description: '' }, TS),
    samples: int('Events learned so far.', { format: 'int64', minimum: 0 }),
    pods: int('Distinct pods observed.', { minimum: 0 }),
    profile: str('metadata.id of the Profile taken.'),
    deviations: int('Deviations emitted since the Profile was taken.', { format: 'int64', minimum: 0 }),
  }, statusCommon))),
  [{ name: 'Phase', type: 'string', jsonPath: '.status.phase' }, { name: 'Window', type: 'string', jsonPath: '.spec.learning.window' }, { name: 'Samples', type: 'integer', jsonPath: '.status.samples' }, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }], true);
const bs = baseline.spec.versions[0].schema.openAPIV3Schema.properties.status.properties; delete bs.windowStart.description; delete bs.windowEnd.description;
const bf = baseline.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.learn.properties.files.properties.enabled; delete bf.description;

// ---------------------------------------------------------------- BehaviorContract (contractc IR)
const PATH = '^/([^\\s\\[\\]{}"\\\\^]*)$';
const evidence = obj('Observation behind a generated rule; does not change what the rule allows.', {
  count: int('Times observed.', { format: 'int64', minimum: 0 }),
  firstSeen: Object.assign({ description: 'RFC 3339.' }, TS), lastSeen: Object.assign({ description: 'RFC 3339.' }, TS),
}, ['count']);
// A string-or-object node cannot be typed in a structural schema: it is kept
// whole (x-kubernetes-preserve-unknown-fields) and checked by value validations
// (anyOf) and, on a real API server, the CEL rule.
function union(desc, strForm, objProps, objReq, cel) {
  // No type: string-only keywords (pattern, maxLength) constrain the string
  // form, object-only ones (required, properties) the mapping form.
  return Object.assign({ description: desc, 'x-kubernetes-preserve-unknown-fields': true }, strForm,
    { required: objReq, properties: objProps, 'x-kubernetes-validations': [{ rule: cel.rule, message: cel.message }] });
}
const pathRule = (proc) => union(
  proc ? 'A program: an absolute path (exact, dir/ = everything below, or a glob with * ** ?), or {path, args, generalised, evidence}.' : 'A path: absolute, exact, dir/ = everything below, or a glob with * ** ?; or {path, generalised, evidence}.',
  { pattern: PATH, maxLength: 4096 },
  Object.assign({ path: str('', { pattern: PATH, maxLength: 4096 }) },
    proc ? { args: arr('One glob per argument after the program name; the count must match.', { type: 'string' }, { minItems: 1 }) } : {},
    { generalised: str('Why this rule is wider than what was observed (written by contractc generate).'), evidence }),
  ['path'],
  { rule: proc ? "type(self) == string || (type(self) == map && has(self.path) && self.all(k, k in ['path', 'args', 'generalised', 'evidence']))"
                : "type(self) == string || (type(self) == map && has(self.path) && self.all(k, k in ['path', 'generalised', 'evidence']))",
    message: proc ? 'a program rule is a path string or {path, args, generalised, evidence}' : 'a path rule is a path string or {path, generalised, evidence}' });
delete pathRule(true).properties.path.description;
const pathList = (d, proc) => arr(d, pathRule(proc));
const port = union('A port: a number (TCP) or {port, endPort, protocol}.', { minimum: 1, maximum: 65535 },
  { port: int('', { minimum: 1, maximum: 65535 }), endPort: int('Last port of a range (>= port).', { minimum: 1, maximum: 65535 }), protocol: str('Default TCP.', { enum: ['TCP', 'UDP', 'SCTP'] }) },
  ['port'], { rule: "type(self) == int || (type(self) == map && has(self.port) && self.all(k, k in ['port', 'endPort', 'protocol']))", message: 'a port is a number or {port, endPort, protocol}' });
const peer = obj('Exactly one of cidr, dns, selector.', {
  cidr: str('IPv4 or IPv6 network, e.g. 10.0.0.0/8.', { pattern: '^([0-9]{1,3}(\\.[0-9]{1,3}){3}/([0-9]|[12][0-9]|3[0-2])|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$' }),
  dns: str('Exact name, *.example.com (one label) or *.', { maxLength: 253, pattern: '^(\\*|(\\*\\.)?[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?)*)$' }),
  selector: obj('In-cluster peer.', { namespace: Object.assign({ description: 'Omitted = the workload\'s own namespace.' }, DNS_LABEL), podLabels: labelMap('') }, [], { minProperties: 1 }),
}, [], { minProperties: 1, maxProperties: 1 });
delete peer.properties.selector.properties.podLabels.description;
const netRule = (peerKey) => obj(`A rule: ${peerKey}, ports, or both.`, {
  [peerKey]: peer,
  ports: arr('Omitted = every port.', port, { minItems: 1 }),
  generalised: str('Written by contractc generate.'), evidence,
}, [], { 'x-kubernetes-validations': [{ rule: `has(self.${peerKey}) || has(self.ports)`, message: `empty rule: give ${peerKey}, ports or both` }] });
const SYSCALL = { pattern: '^[a-z_][a-z0-9_]*$', maxLength: 64 };
const nameRule = (d, strForm) => union(d, strForm, { name: str('', strForm), evidence }, ['name'],
  { rule: "type(self) == string || (type(self) == map && has(self.name) && self.all(k, k in ['name', 'evidence']))", message: 'a name or {name, evidence}' });
const CAPS = ['AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYSLOG', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE', 'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM'];
const profileRef = (d) => obj(d, { type: str('', { enum: ['RuntimeDefault', 'Localhost', 'Unconfined'] }), localhostProfile: str('Only with type Localhost, and required there.', { minLength: 1 }) }, ['type'],
  { 'x-kubernetes-validations': [{ rule: "(self.type == 'Localhost') == has(self.localhostProfile)", message: 'localhostProfile is required with, and only allowed with, type Localhost' }] });
const contract = crd('BehaviorContract', 'behaviorcontracts', 'Namespaced', ['klbc', 'contract'], root(
  'BehaviorContract: what one workload may do, independently of any enforcer (the contractc IR, docs/contract-ir.md). A section that is absent says nothing; a section that is present is an allow list. contractc validate checks the rules a schema cannot (contradictions, syscall names against libseccomp, path normalisation).',
  obj('The contract.', {
    mode: str('audit: report violations; enforce: compiled policies block them.', { enum: ['audit', 'enforce'], default: 'enforce' }),
    selector: obj('The workload. An empty selector is an error.', {
      namespace: Object.assign({ description: 'Namespace of the pods; must equal metadata.namespace when both are set.' }, DNS_LABEL),
      podLabels: labelMap('Pod labels; all must match.'),
      container: str('Container name inside the pod.', { minLength: 1, maxLength: 253 }),
      image: str('Image reference.', { minLength: 1, maxLength: 512 }),
    }, [], { minProperties: 1 }),
    process: obj('Programs. Only deny = a deny list.', { allow: pathList('Programs that may be executed.', true), deny: pathList('Programs that must never be executed.', true) }, [], { minProperties: 1 }),
    files: obj('Files. Only deny = a deny list.', {
      read: pathList('May be opened for reading.', false), write: pathList('May be read and written (create, truncate, lock).', false),
      exec: pathList('May be executed or mapped executable (programs, shared libraries).', false), deny: pathList('Never, whatever else allows it.', false),
    }, [], { minProperties: 1 }),
    network: obj('Network. egress/ingress present = default-deny in that direction.', {
      dns: bool('Name resolution (cluster DNS, 53/UDP+TCP).', true),
      egress: arr('[] = no egress at all.', netRule('to')), ingress: arr('[] = no ingress at all.', netRule('from')),
    }, [], { minProperties: 1 }),
    syscalls: obj('Syscalls (seccomp).', {
      default: str('deny = allow list (needs allow); allow = deny list (needs deny).', { enum: ['deny', 'allow'] }),
      action: str('What happens to a denied call.', { enum: ['errno', 'kill', 'log', 'trap'], default: 'errno' }),
      errno: int('Only with action errno (default 1 = EPERM).', { minimum: 1, maximum: 4095 }),
      allow: arr('', nameRule('A syscall name or {name, evidence}.', SYSCALL)), deny: arr('', nameRule('A syscall name or {name, evidence}.', SYSCALL)),
    }, ['default'], { 'x-kubernetes-validations': [
      { rule: "self.default == 'deny' ? (has(self.allow) && !has(self.deny)) : (has(self.deny) && !has(self.allow))", message: 'default: deny needs allow and forbids deny; default: allow needs deny and forbids allow' },
      { rule: "!has(self.errno) || !has(self.action) || self.action == 'errno'", message: 'errno is only valid with action errno' }] }),
    capabilities: obj('Capabilities (Linux names without CAP_).', { allow: arr('Everything else is dropped; [] = no capabilities.', nameRule('A capability or {name, evidence}.', { pattern: '^(' + CAPS.join('|') + ')$' })) }, ['allow']),
    pod: obj('Pod-level controls; an unset field is left open.', {
      runAsNonRoot: bool(''), allowPrivilegeEscalation: bool('false: no_new_privs.'), privileged: bool(''),
      hostPID: bool(''), hostIPC: bool(''), hostNetwork: bool(''),
      hostPaths: arr('The only hostPath volumes allowed; [] = none; no globs.', obj('', { path: str('', { pattern: '^/[^\\s\\[\\]{}"\\\\^*?]*$' }), readOnly: bool('') }, ['path'])),
      readOnlyRootFilesystem: bool(''), seccompProfile: profileRef('Seccomp profile.'), appArmorProfile: profileRef('AppArmor profile (same shape as the Kubernetes field).'),
    }, [], { 'x-kubernetes-validations': [{ rule: "!(has(self.privileged) && self.privileged && has(self.allowPrivilegeEscalation) && !self.allowPrivilegeEscalation)", message: 'privileged: true contradicts allowPrivilegeEscalation: false' }] }),
  }, []), true, null),
  [{ name: 'Mode', type: 'string', jsonPath: '.spec.mode' }, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }], false);

// ---------------------------------------------------------------- NodeCapabilities
const HOOKS = ['tracepoint', 'raw_tracepoint', 'tp_btf', 'kprobe', 'fentry', 'bpf_lsm', 'cgroup_skb', 'ringbuf'];
const hookProps = {}; for (const h of HOOKS) hookProps[h] = obj('', { available: bool(''), reason: str('Why not (absent when available).') }, ['available']);
const nodecaps = crd('NodeCapabilities', 'nodecapabilities', 'Cluster', ['klcaps'], root(
  'NodeCapabilities: what this node\'s kernel offers the collector, as probed (kl-collector --probe --json), never assumed. Written by the agent, one per node, named after the node; read-only for everyone else.',
  obj('The probe report.', {
    nodeName: str('The node (also metadata.name).', { minLength: 1, maxLength: 253 }),
    probedAt: Object.assign({ description: 'When the probe ran.' }, TS),
    agentVersion: str('kloudlens version that probed.'),
    probe: obj('kl-collector --probe --json, verbatim.', {
      kernel: str('uname -r.', { minLength: 1 }),
      btf: bool('/sys/kernel/btf/vmlinux is readable (CO-RE possible).'),
      tracefs: bool('tracefs is mounted at /sys/kernel/tracing (or could be mounted).'),
      cgroup2: str('cgroup v2 mount point; empty = none.'),
      cgroup_hybrid: bool('v1 hierarchies next to v2.'),
      ncpus: int('Possible CPUs.', { minimum: 0 }),
      ringbuf_max_bytes: int('Largest BPF ring buffer created (0 = none).', { format: 'int64', minimum: 0 }),
      syscall_attach: str('How syscalls are hooked.', { enum: ['tp_btf', 'raw_tracepoint', 'tracepoint', 'none'] }),
      hooks: obj('Each hook kind, loaded and attached once.', hookProps, HOOKS),
      fallbacks: obj('What the collector uses for each source.', {
        syscalls: str('', { enum: ['tp_btf', 'raw_tracepoint', 'tracepoint', 'none'] }),
        process_lifecycle: str('', { enum: ['raw_tracepoint sched_process_*', 'none'] }),
        dns: str('', { enum: ['cgroup_skb', 'none'] }),
      }, ['syscalls', 'process_lifecycle', 'dns']),
    }, ['kernel', 'btf', 'tracefs', 'cgroup2', 'cgroup_hybrid', 'ncpus', 'ringbuf_max_bytes', 'syscall_attach', 'hooks', 'fallbacks']),
  }, ['nodeName', 'probe']), true, null),
  [{ name: 'Kernel', type: 'string', jsonPath: '.spec.probe.kernel' }, { name: 'BTF', type: 'boolean', jsonPath: '.spec.probe.btf' }, { name: 'Syscalls', type: 'string', jsonPath: '.spec.probe.syscall_attach' }, { name: 'Probed', type: 'date', jsonPath: '.spec.probedAt' }], false);

// strip empty descriptions
function clean(n) { if (Array.isArray(n)) return n.forEach(clean); if (n && typeof n === 'object') { if (n.description === '') delete n.description; Object.values(n).forEach(clean); } }
const files = { 'hooksubscriptions.yaml': hook, 'baselinepolicies.yaml': baseline, 'behaviorcontracts.yaml': contract, 'nodecapabilities.yaml': nodecaps };
for (const [f, d] of Object.entries(files)) {
  clean(d);
  const head = `# CustomResourceDefinition ${d.spec.names.kind} (${d.spec.group}/v1), docs/control-plane.md.\n# Generated by deployments/kubernetes/gen-crds.js: edit that, not this file.\n# Structural schema: unknown fields are pruned by the API server and rejected by\n# kubectl apply --validate=strict (tests/deployments checks the same with ajv).\n`;
  fs.writeFileSync(`${out}/${f}`, head + yaml.dump(d, { lineWidth: 120, noRefs: true }));
}
