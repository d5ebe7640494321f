#!/usr/bin/env node
// Validate Kubernetes YAML/JSON files (multi-document) against the schemas in
// tests/schemas/, choosing the schema by apiVersion+kind.
// Adapted from shared/tools/kvalidate.js (shared/MACHINE.md section 3), plus:
// Gatekeeper Constraints are checked against the hand-written Constraint
// schema with spec.parameters replaced by the openAPIV3Schema of the
// ConstraintTemplate (same file set) whose crd.spec.names.kind matches.
// usage: node kvalidate.js [--strict] [--schemas DIR] FILE...
// exit: 0 all valid, 1 some invalid, 2 usage/unknown kind/parse error
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const Ajv = require('ajv');
const k8sFormats = require('./k8s-ajv-formats.js');

const args = process.argv.slice(2);
let strict = false; const files = [];
let dir = process.env.KVALIDATE_SCHEMAS || path.join(__dirname, '..', '..', 'schemas');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--strict') strict = true;
  else if (args[i] === '--schemas') dir = args[++i];
  else files.push(args[i]);
}
if (!files.length) { console.error('usage: kvalidate.js [--strict] [--schemas DIR] FILE...'); process.exit(2); }

const sources = JSON.parse(fs.readFileSync(path.join(dir, 'SOURCES.json'), 'utf8'));
const ajv = new Ajv({ strict: false, allErrors: true });
k8sFormats(ajv);
const cache = {};
function load(f) {
  if (!cache[f]) cache[f] = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  return cache[f];
}
function validatorFor(apiVersion, kind) {
  const src = sources.find((s) => s.apiVersion === apiVersion && s.kind === kind);
  if (!src) return null;
  const f = strict && !src.schema.endsWith('.strict.json') ? src.schema.replace(/\.json$/, '.strict.json') : src.schema;
  return ajv.compile(load(f));
}

const all = [];
let rc = 0;
for (const file of files) {
  try {
    yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d != null).forEach((doc, i) => all.push({ file, i, doc }));
  } catch (e) {
    console.log(`${file}: PARSE ERROR ${e.message.split('\n')[0]}`); rc = Math.max(rc, 2);
  }
}
const templates = {};
for (const { doc } of all) {
  if (doc.apiVersion === 'templates.gatekeeper.sh/v1' && doc.kind === 'ConstraintTemplate') {
    const k = doc.spec && doc.spec.crd && doc.spec.crd.spec && doc.spec.crd.spec.names && doc.spec.crd.spec.names.kind;
    if (k) templates[k] = doc;
  }
}
const compiled = {};
for (const { file, i, doc } of all) {
  const id = `${file}#${i} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
  let v;
  if (doc.apiVersion === 'constraints.gatekeeper.sh/v1beta1') {
    const t = templates[doc.kind];
    if (!t) { console.log(`${id}: NO ConstraintTemplate for kind ${doc.kind} in the given files`); rc = Math.max(rc, 2); continue; }
    const base = JSON.parse(JSON.stringify(load('constraint-constraints.gatekeeper.sh-v1beta1.strict.json')));
    const params = t.spec.crd.spec.validation && t.spec.crd.spec.validation.openAPIV3Schema;
    if (params) {
      const p = JSON.parse(JSON.stringify(params));
      // Gatekeeper prunes unknown parameters under a structural schema; strict mode rejects them
      if (strict && p.type === 'object' && p.properties && p.additionalProperties === undefined) p.additionalProperties = false;
      base.properties.spec.properties.parameters = p;
    }
    base.properties.kind = { const: doc.kind };
    v = compiled[doc.kind] || (compiled[doc.kind] = ajv.compile(base));
  } else {
    v = validatorFor(doc.apiVersion, doc.kind);
  }
  if (!v) { console.log(`${id}: NO SCHEMA for ${doc.apiVersion} ${doc.kind}`); rc = Math.max(rc, 2); continue; }
  if (v(doc)) { console.log(`${id}: valid`); continue; }
  rc = Math.max(rc, 1);
  console.log(`${id}: INVALID`);
  for (const e of v.errors) console.log(`  ${e.instancePath || '/'} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`);
}
process.exit(rc);
