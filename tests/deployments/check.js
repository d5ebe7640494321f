#!/usr/bin/env node
// Checks of deployments/ without a cluster, docker or systemd as PID 1.
// usage: node check.js SUBCOMMAND SOURCE_ROOT [ARGS]
//   parse      every YAML file under deployments/ parses; Kubernetes documents
//              have apiVersion, kind, metadata.name
//   crds       the four CRDs: names, versions, structural-schema rules
//   instances  deployments/examples/*.yaml valid; tests/deployments/invalid/*
//              rejected with the expected message; contractc's example
//              contracts valid as BehaviorContract objects; bad contracts
//              a schema can catch rejected
//   workloads  sidecar pod, DaemonSet, RBAC, ConfigMap: structural checks
//   compose    docker-compose.yml: structural checks
//   nodecaps FILE   a `kl-collector --probe --json` output, wrapped in a
//              NodeCapabilities object, validates
// Prints one line per check; exit 0 = all passed, 1 = a check failed.
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const L = require('./lib.js');

const [cmd, root, arg] = process.argv.slice(2);
if (!cmd || !root) { console.error('usage: check.js SUBCOMMAND SOURCE_ROOT [ARG]'); process.exit(2); }
const dep = path.join(root, 'deployments');
const rel = (p) => path.relative(root, p);
let failed = 0, passed = 0;
function check(ok, what, detail) {
  if (ok) { passed++; console.log(`ok   ${what}`); return true; }
  failed++;
  console.log(`FAIL ${what}`);
  for (const d of [].concat(detail || [])) console.log(`       ${d}`);
  return false;
}
const crdFiles = () => L.walk(path.join(dep, 'kubernetes', 'crds'), ['.yaml', '.yml']);
const KINDS = ['HookSubscription', 'BaselinePolicy', 'BehaviorContract', 'NodeCapabilities'];

function validateDoc(vals, doc) {
  const v = vals[doc && doc.kind];
  if (!v) return [`no CRD for kind ${doc && doc.kind}`];
  return v(doc) ? [] : L.explain(v);
}

const cmds = {
  parse() {
    const files = L.walk(dep, ['.yaml', '.yml']);
    check(files.length >= 10, `found ${files.length} YAML files under deployments/`);
    for (const f of files) {
      let docs;
      try { docs = L.loadDocs(f); } catch (e) { check(false, `${rel(f)} parses`, e.message.split('\n')[0]); continue; }
      if (!check(docs.length > 0, `${rel(f)} parses (${docs.length} document${docs.length === 1 ? '' : 's'})`)) continue;
      if (f.includes(`${path.sep}compose${path.sep}`)) continue;
      docs.forEach((d, i) => check(d && typeof d.apiVersion === 'string' && typeof d.kind === 'string' && d.metadata && d.metadata.name,
        `${rel(f)}#${i} has apiVersion, kind, metadata.name`));
    }
  },

  crds() {
    const kinds = [];
    for (const f of crdFiles()) for (const d of L.loadDocs(f)) {
      kinds.push(d.spec.names.kind);
      const errs = L.crdErrors(d, rel(f));
      check(!errs.length, `${rel(f)}: ${d.spec.names.kind} is a valid structural CRD`, errs);
    }
    check(KINDS.every((k) => kinds.includes(k)) && kinds.length === 4, `the four kinds are defined (${kinds.join(', ')})`);
    // the YAML is what deployments/kubernetes/gen-crds.js generates
    const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'kl-crds-'));
    try {
      require('child_process').execFileSync(process.execPath, [path.join(dep, 'kubernetes', 'gen-crds.js'), tmp], { stdio: 'inherit' });
      for (const f of crdFiles()) {
        const g = path.join(tmp, path.basename(f));
        check(fs.existsSync(g) && fs.readFileSync(g, 'utf8') === fs.readFileSync(f, 'utf8'), `${rel(f)} is up to date with gen-crds.js`);
      }
    } finally { fs.rmSync(tmp, { recursive: true, force: true }); }
    // docs/control-plane.md documents every field of every kind
    const doc = fs.readFileSync(path.join(root, 'docs', 'control-plane.md'), 'utf8');
    for (const f of crdFiles()) for (const d of L.loadDocs(f)) {
      const paths = [];
      (function w(n, p) {
        if (p) paths.push(p);
        const sub = n.properties ? n : n.type === 'array' && n.items && n.items.properties ? n.items : null;
        if (!sub) return;
        for (const k of Object.keys(sub.properties)) w(sub.properties[k], `${n.type === 'array' ? p + '[]' : p}.${k}`);
      })(d.spec.versions[0].schema.openAPIV3Schema.properties.spec, 'spec');
      const missing = paths.filter((p) => !doc.includes('`' + p + '`'));
      check(!missing.length, `docs/control-plane.md documents all ${paths.length} spec fields of ${d.spec.names.kind}`, missing);
    }
    // the lint itself must catch what it claims to
    const bad = { type: 'object', properties: { spec: { type: 'object', additionalProperties: false, properties: { a: {} },
      anyOf: [{ type: 'string' }] }, metadata: { type: 'object', properties: { labels: { type: 'object' } } } } };
    const errs = L.structuralErrors(bad).join('\n');
    check(['mutually exclusive', 'forbidden', 'type is required', 'not allowed inside', 'may not be specified'].every((s) => errs.includes(s)),
      'the structural lint rejects a non-structural schema', errs.split('\n'));
  },

  instances() {
    const vals = L.validators(crdFiles());
    const seen = new Set();
    for (const f of L.walk(path.join(dep, 'examples'), ['.yaml', '.yml'])) {
      L.loadDocs(f).forEach((d, i) => {
        seen.add(d.kind);
        const errs = validateDoc(vals, d);
        check(!errs.length, `${rel(f)}#${i} ${d.kind}/${d.metadata && d.metadata.name} is valid`, errs);
      });
    }
    check(KINDS.every((k) => seen.has(k)), 'deployments/examples has an instance of each kind');
    // invalid instances: each file's "# expect: TEXT" lines must all appear in the errors
    const inv = L.walk(path.join(root, 'tests', 'deployments', 'invalid'), ['.yaml']);
    check(inv.length >= 8, `${inv.length} invalid instances`);
    for (const f of inv) {
      const text = fs.readFileSync(f, 'utf8');
      const expect = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1].trim());
      const d = yaml.load(text);
      const errs = validateDoc(vals, d);
      const missing = expect.filter((x) => !errs.some((e) => e.includes(x)));
      check(errs.length > 0 && expect.length > 0 && !missing.length, `${rel(f)} rejected (${expect.join('; ')})`,
        errs.length ? [...missing.map((m) => `expected error not reported: ${m}`), ...errs] : ['accepted, should be rejected']);
    }
    // contractc's own example contracts are BehaviorContract objects as they are
    const cdir = path.join(root, 'examples', 'contracts');
    const extra = [path.join(root, 'tests', 'contractc', 'data')];
    const contracts = [...L.walk(cdir, ['.yaml']), ...fs.readdirSync(extra[0]).filter((n) => n.endsWith('.yaml')).map((n) => path.join(extra[0], n))];
    for (const f of contracts) {
      const d = yaml.load(fs.readFileSync(f, 'utf8'));
      // metadata.derivedFrom is contractc's, not ObjectMeta: the API server drops it
      if (d.metadata) delete d.metadata.derivedFrom;
      const errs = validateDoc(vals, d);
      check(!errs.length, `${rel(f)} (contractc example) is a valid BehaviorContract`, errs);
    }
    // contracts contractc rejects for a reason a schema can see
    const bad = { 'unknown-key': 'must NOT have additional properties', 'wrong-api': 'must be equal to constant',
      'wrong-type-bool': 'must be boolean', 'missing-spec': "must have required property 'spec'", 'empty-sections': 'must NOT have fewer than 1 properties' };
    for (const [n, want] of Object.entries(bad)) {
      const f = path.join(root, 'tests', 'contractc', 'data', 'bad-contracts', `${n}.yaml`);
      let d;
      try { d = yaml.load(fs.readFileSync(f, 'utf8')); } catch (e) { check(false, `${rel(f)} loads`, e.message); continue; }
      const v = vals.BehaviorContract;
      const errs = v(d) ? [] : L.explain(v);
      check(errs.some((e) => e.includes(want)), `${rel(f)} rejected by the CRD schema (${want})`, errs.length ? errs : ['accepted']);
    }
  },

  workloads() {
    const k = path.join(dep, 'kubernetes');
    const all = [];
    for (const f of L.walk(k, ['.yaml'])) if (!f.includes(`${path.sep}crds${path.sep}`)) L.loadDocs(f).forEach((d) => all.push({ f, d }));
    const find = (kind, name) => all.filter((x) => x.d.kind === kind && (!name || x.d.metadata.name === name)).map((x) => x.d);
    const KNOWN = { Namespace: 'v1', ServiceAccount: 'v1', ConfigMap: 'v1', Pod: 'v1', DaemonSet: 'apps/v1',
      ClusterRole: 'rbac.authorization.k8s.io/v1', ClusterRoleBinding: 'rbac.authorization.k8s.io/v1' };
    for (const { f, d } of all)
      check(KNOWN[d.kind] === d.apiVersion, `${rel(f)} ${d.kind}/${d.metadata.name}: apiVersion ${d.apiVersion}`);
    const ns = find('Namespace')[0];
    check(!!ns, 'a Namespace is defined');
    const nsName = ns && ns.metadata.name;
    if (ns) {
      // the PodSecurity labels validate against tests/schemas (kvalidate.js, run by the meson test too)
      check(ns.metadata.labels && ns.metadata.labels['pod-security.kubernetes.io/enforce'] === 'privileged',
        'the agent namespace enforces PodSecurity "privileged" (the collector needs BPF capabilities and hostPID)');
    }
    for (const { d } of all) if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind))
      check(d.metadata.namespace === nsName || d.kind === 'Pod', `${d.kind}/${d.metadata.name} is in namespace ${nsName}`);
    const COLLECTOR_CAPS = ['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_RESOURCE', 'DAC_READ_SEARCH', 'SYS_PTRACE'];
    const RINGS = '/dev/shm/kloudlens';
    function podSpecChecks(where, spec) {
      const vols = Object.fromEntries((spec.volumes || []).map((v) => [v.name, v]));
      check(Object.keys(vols).length === (spec.volumes || []).length, `${where}: volume names unique`);
      const rings = Object.values(vols).find((v) => v.emptyDir && v.emptyDir.medium === 'Memory');
      check(!!rings, `${where}: an emptyDir with medium: Memory for the rings`);
      const cs = [...(spec.initContainers || []), ...spec.containers];
      check(new Set(cs.map((c) => c.name)).size === cs.length, `${where}: container names unique`);
      const stages = ['collector', 'enricher', 'intentd', 'graphd', 'baselined', 'exporter'];
      check(stages.every((s) => spec.containers.some((c) => c.name === s)), `${where}: one container per stage (${stages.join(', ')})`);
      const ours = new Set(['probe', ...stages, 'controller']);
      for (const c of cs) {
        const id = `${where}: container ${c.name}`;
        if (!ours.has(c.name)) {
          // the application beside the stages (sidecar mode): held to "restricted" basics only
          const sc = c.securityContext || {};
          check(sc.runAsNonRoot === true && sc.allowPrivilegeEscalation === false && JSON.stringify((sc.capabilities || {}).drop) === '["ALL"]',
            `${id} (application): runAsNonRoot, no privilege escalation, drop ALL`);
          continue;
        }
        check(typeof c.image === 'string' && /^[^\s]+:[^\s]+$/.test(c.image), `${id}: image with a tag`);
        for (const m of c.volumeMounts || []) check(!!vols[m.name], `${id}: mount ${m.name} refers to a volume`);
        check((c.volumeMounts || []).some((m) => rings && m.name === rings.name && m.mountPath === RINGS), `${id}: rings volume at ${RINGS}`);
        const sc = c.securityContext || {};
        const caps = sc.capabilities || {};
        check(JSON.stringify(caps.drop) === '["ALL"]', `${id}: capabilities drop [ALL]`);
        check(sc.allowPrivilegeEscalation === false && sc.privileged !== true, `${id}: allowPrivilegeEscalation false, not privileged`);
        check(sc.readOnlyRootFilesystem === true, `${id}: readOnlyRootFilesystem`);
        check(c.resources && c.resources.limits && c.resources.limits.memory, `${id}: memory limit`);
        if (c.name.startsWith('collector') || c.name === 'probe') {
          check(JSON.stringify([...(caps.add || [])].sort()) === JSON.stringify([...COLLECTOR_CAPS].sort()),
            `${id}: adds exactly ${COLLECTOR_CAPS.join(' ')}`, `adds ${JSON.stringify(caps.add)}`);
        } else {
          check(!caps.add || !caps.add.length, `${id}: adds no capability`);
          check(sc.runAsNonRoot === true || (spec.securityContext || {}).runAsNonRoot === true, `${id}: runAsNonRoot`);
        }
        for (const p of c.ports || []) check(Number.isInteger(p.containerPort) && p.containerPort > 0 && p.containerPort < 65536, `${id}: port ${p.name}`);
      }
      const groups = new Set(cs.filter((c) => ours.has(c.name)).map((c) => (c.securityContext || {}).runAsGroup ?? (spec.securityContext || {}).runAsGroup));
      check(groups.size === 1 && !groups.has(undefined), `${where}: every container runs with one gid (group write on the rings)`, [...groups].map(String));
      check((spec.securityContext || {}).fsGroup !== undefined || groups.size === 1, `${where}: fsGroup or one shared gid`);
      return cs;
    }
    const pod = find('Pod')[0];
    if (check(!!pod, 'a sidecar Pod is defined')) {
      podSpecChecks('sidecar Pod', pod.spec);
      check(pod.spec.containers.some((c) => !['collector', 'enricher', 'intentd', 'graphd', 'baselined', 'exporter'].includes(c.name)), 'sidecar Pod: has an application container beside the stages');
      check(pod.spec.shareProcessNamespace === true, 'sidecar Pod: shareProcessNamespace (the collector sees the app)');
    }
    const ds = find('DaemonSet')[0];
    if (check(!!ds, 'a DaemonSet is defined')) {
      const sel = ds.spec.selector && ds.spec.selector.matchLabels;
      const lab = ds.spec.template.metadata.labels;
      check(sel && Object.entries(sel).every(([a, b]) => lab[a] === b), 'DaemonSet: selector matches the template labels');
      const spec = ds.spec.template.spec;
      podSpecChecks('DaemonSet', spec);
      check(spec.hostPID === true, 'DaemonSet: hostPID (processes of the whole node)');
      const sa = find('ServiceAccount', spec.serviceAccountName)[0];
      check(!!sa, `DaemonSet: serviceAccountName ${spec.serviceAccountName} exists`);
      const cmRefs = (spec.volumes || []).filter((v) => v.configMap).map((v) => v.configMap.name);
      check(cmRefs.length > 0 && cmRefs.every((n) => find('ConfigMap', n).length), `DaemonSet: ConfigMap volumes exist (${cmRefs.join(', ')})`);
      check(ds.spec.updateStrategy && ds.spec.updateStrategy.type === 'RollingUpdate', 'DaemonSet: RollingUpdate');
      const env = spec.containers.flatMap((c) => c.env || []);
      check(env.some((e) => e.name === 'NODE_NAME' && e.valueFrom && e.valueFrom.fieldRef && e.valueFrom.fieldRef.fieldPath === 'spec.nodeName'), 'DaemonSet: NODE_NAME from the downward API');
    }
    // RBAC
    const crb = find('ClusterRoleBinding')[0], cr = find('ClusterRole')[0];
    if (check(crb && cr, 'ClusterRole and ClusterRoleBinding are defined')) {
      check(crb.roleRef.kind === 'ClusterRole' && crb.roleRef.name === cr.metadata.name && crb.roleRef.apiGroup === 'rbac.authorization.k8s.io', 'binding refers to the ClusterRole');
      check(crb.subjects.every((s) => s.kind === 'ServiceAccount' && find('ServiceAccount', s.name).some((x) => x.metadata.namespace === s.namespace)), 'binding subjects are existing ServiceAccounts');
      const can = (group, res, verb) => cr.rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(res) && (r.verbs.includes(verb) || r.verbs.includes('*')));
      for (const v of ['get', 'list', 'watch']) {
        for (const r of ['pods', 'namespaces']) check(can('', r, v), `ClusterRole: ${v} ${r}`);
        for (const r of ['hooksubscriptions', 'baselinepolicies', 'behaviorcontracts', 'nodecapabilities']) check(can('kloudlens.io', r, v), `ClusterRole: ${v} ${r}.kloudlens.io`);
      }
      for (const v of ['create', 'update', 'patch']) check(can('kloudlens.io', 'nodecapabilities', v), `ClusterRole: ${v} nodecapabilities`);
      check(!cr.rules.some((r) => r.verbs.includes('*') || r.resources.includes('*') || r.apiGroups.includes('*')), 'ClusterRole: no wildcards');
      check(!cr.rules.some((r) => r.resources.includes('secrets')), 'ClusterRole: no access to secrets');
      const writes = cr.rules.filter((r) => r.verbs.some((v) => ['create', 'update', 'patch', 'delete'].includes(v)));
      check(writes.every((r) => r.resources.every((x) => ['nodecapabilities', 'hooksubscriptions/status', 'baselinepolicies/status', 'behaviorcontracts', 'events'].includes(x))),
        'ClusterRole: writes only NodeCapabilities, status subresources, generated contracts and events', JSON.stringify(writes));
    }
    // ConfigMap: the kloudlens config, every key documented in docs/configuration.md
    const cm = find('ConfigMap')[0];
    if (check(cm && cm.data && cm.data['config.yaml'], 'ConfigMap holds config.yaml')) {
      const md = fs.readFileSync(path.join(root, 'docs', 'configuration.md'), 'utf8');
      const keys = new Set([...md.matchAll(/^\| `([a-z_.]+)` \|/gm)].map((m) => m[1]));
      const cfg = yaml.load(cm.data['config.yaml']);
      const flat = [];
      (function f(o, p) { for (const [k, v] of Object.entries(o)) { const kp = p ? `${p}.${k}` : k; if (v && typeof v === 'object' && !Array.isArray(v)) f(v, kp); else flat.push(kp); } })(cfg, '');
      check(keys.size > 10, `docs/configuration.md lists ${keys.size} keys`);
      const unknown = flat.filter((x) => !keys.has(x));
      check(!unknown.length, `ConfigMap config.yaml: every key is documented (${flat.length} keys)`, unknown.map((u) => `unknown key ${u}`));
      check(cfg.mode === 'kubernetes', 'ConfigMap config.yaml: mode kubernetes');
    }
  },

  compose() {
    const f = path.join(dep, 'compose', 'docker-compose.yml');
    const c = yaml.load(fs.readFileSync(f, 'utf8'));
    const s = c.services || {};
    const stages = ['collector', 'enricher', 'intentd', 'graphd', 'baselined', 'exporter'];
    check(stages.every((x) => s[x]), `${rel(f)}: a service per stage`);
    const vols = c.volumes || {};
    const rings = Object.entries(vols).find(([, v]) => v && v.driver_opts && v.driver_opts.type === 'tmpfs');
    check(!!rings, `${rel(f)}: a tmpfs volume for the rings`);
    for (const [n, svc] of Object.entries(s)) {
      const id = `${rel(f)}: service ${n}`;
      check(typeof svc.image === 'string' && svc.image.includes(':'), `${id}: image with a tag`);
      const mounts = (svc.volumes || []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v));
      check(rings && mounts.some((m) => m.source === rings[0] && m.target === '/dev/shm/kloudlens'), `${id}: rings volume at /dev/shm/kloudlens`);
      for (const m of mounts) if (!m.source.startsWith('/') && !m.source.startsWith('.')) check(m.source in vols, `${id}: volume ${m.source} declared`);
      check(JSON.stringify(svc.cap_drop) === '["ALL"]', `${id}: cap_drop ALL`);
      check((svc.security_opt || []).includes('no-new-privileges:true'), `${id}: no-new-privileges`);
      check(svc.read_only === true, `${id}: read_only root filesystem`);
      check(['on-failure', 'unless-stopped', 'always'].includes(svc.restart), `${id}: restart policy`);
      for (const d of Object.keys(svc.depends_on || {})) check(!!s[d], `${id}: depends_on ${d} exists`);
      if (n === 'collector') check(JSON.stringify([...(svc.cap_add || [])].sort()) === JSON.stringify(['BPF', 'DAC_READ_SEARCH', 'NET_ADMIN', 'PERFMON', 'SYS_PTRACE', 'SYS_RESOURCE']), `${id}: the collector's capabilities only`);
      else check(!svc.cap_add && typeof svc.user === 'string' && !['0', 'root', ''].includes(svc.user.split(':')[0]) && svc.user.split(':')[1] === '2000', `${id}: unprivileged user (gid 2000), no capabilities`);
    }
    check(s.exporter && (s.exporter.ports || []).every((p) => String(p).startsWith('127.0.0.1:')), `${rel(f)}: exporter ports published on 127.0.0.1 only`);
  },

  nodecaps() {
    const probe = JSON.parse(fs.readFileSync(arg, 'utf8'));
    const vals = L.validators(crdFiles());
    const doc = { apiVersion: 'kloudlens.io/v1', kind: 'NodeCapabilities', metadata: { name: 'this-node' },
      spec: { nodeName: 'this-node', probedAt: new Date().toISOString(), probe } };
    const errs = validateDoc(vals, doc);
    check(!errs.length, `kl-collector --probe --json (${probe.kernel}) as a NodeCapabilities spec.probe is valid`, errs);
  },
};

if (!cmds[cmd]) { console.error(`unknown subcommand ${cmd}`); process.exit(2); }
try { cmds[cmd](); } catch (e) { check(false, `${cmd}: exception`, e.stack.split('\n').slice(0, 4)); }
console.log(`${cmd}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
