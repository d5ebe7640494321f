// Shared helpers for the deployments tests: YAML loading, the CRD
// structural-schema lint, and CRD schema -> ajv validator (strict mode).
// NODE_PATH must point at tests/contractc/node/node_modules (ajv, ajv-formats,
// js-yaml; installed by scripts/node-deps.sh).
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

function walk(dir, exts) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) out.push(p);
  }
  return out.sort();
}

function loadDocs(file) {
  return yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d != null);
}

// ---- structural schema rules (apiextensions-apiserver, v1 CRDs) ----------
// https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema
const ALLOWED = new Set(['type', 'format', 'title', 'description', 'default', 'maximum', 'exclusiveMaximum',
  'minimum', 'exclusiveMinimum', 'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems', 'uniqueItems',
  'multipleOf', 'enum', 'maxProperties', 'minProperties', 'required', 'items', 'allOf', 'oneOf', 'anyOf', 'not',
  'properties', 'additionalProperties', 'nullable', 'example', 'externalDocs',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource', 'x-kubernetes-int-or-string',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations']);
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'];

function structuralErrors(schema) {
  const errs = [];
  const err = (p, m) => errs.push(`${p || '/'}: ${m}`);
  function inJunctor(n, p, outer) {
    for (const k of ['type', 'description', 'default', 'additionalProperties', 'nullable'])
      if (k in n) err(p, `${k} is not allowed inside allOf/anyOf/oneOf/not`);
    if (n.properties)
      for (const k of Object.keys(n.properties))
        if (!outer.properties || !(k in outer.properties)) err(p, `property ${k} inside a junctor is not specified outside it`);
    if (n.items && !outer.items) err(p, 'items inside a junctor is not specified outside it');
    for (const j of JUNCTORS) for (const [i, s] of [].concat(n[j] || []).entries()) inJunctor(s, `${p}/${j}/${i}`, outer);
  }
  function node(n, p, needType) {
    if (typeof n !== 'object' || n === null || Array.isArray(n)) return err(p, 'schema node is not a mapping');
    for (const k of Object.keys(n)) if (!ALLOWED.has(k)) err(p, `keyword ${k} is not allowed in a CRD schema`);
    const exempt = n['x-kubernetes-preserve-unknown-fields'] === true || n['x-kubernetes-int-or-string'] === true;
    if (needType && !n.type && !exempt) err(p, 'type is required (structural schema)');
    if (n.type && !TYPES.has(n.type)) err(p, `unknown type ${n.type}`);
    if (n.properties && n.additionalProperties !== undefined) err(p, 'properties and additionalProperties are mutually exclusive');
    if (n.additionalProperties === false) err(p, 'additionalProperties: false is forbidden (unknown fields are pruned instead)');
    if (n.uniqueItems === true) err(p, 'uniqueItems: true is forbidden (use x-kubernetes-list-type: set)');
    if (n.type === 'array' && !n.items) err(p, 'array without items');
    if (n.items && Array.isArray(n.items)) err(p, 'items must be one schema');
    if (n.required && n.properties)
      for (const r of n.required) if (!(r in n.properties)) err(p, `required ${r} is not a property`);
    if (n.enum && n.type) for (const v of n.enum)
      if ((n.type === 'string' && typeof v !== 'string') || (n.type === 'integer' && !Number.isInteger(v)))
        err(p, `enum value ${JSON.stringify(v)} is not a ${n.type}`);
    if (n.pattern) { try { new RegExp(n.pattern, 'u'); } catch (e) { err(p, `bad pattern: ${e.message}`); } }
    const lt = n['x-kubernetes-list-type'];
    if (lt && !['atomic', 'set', 'map'].includes(lt)) err(p, `bad x-kubernetes-list-type ${lt}`);
    if (lt === 'map') {
      const keys = n['x-kubernetes-list-map-keys'] || [];
      if (!keys.length) err(p, 'list-type map needs x-kubernetes-list-map-keys');
      for (const k of keys) if (!(n.items.required || []).includes(k)) err(p, `list-map-key ${k} must be required in items`);
    }
    if (lt === 'set' && n.items && !['string', 'integer', 'number', 'boolean'].includes(n.items.type))
      err(p, 'list-type set needs scalar items');
    for (const v of n['x-kubernetes-validations'] || [])
      if (typeof v.rule !== 'string' || !v.rule) err(p, 'x-kubernetes-validations entry without rule');
    if (n.properties) for (const [k, s] of Object.entries(n.properties)) node(s, `${p}/properties/${k}`, true);
    if (n.additionalProperties && typeof n.additionalProperties === 'object') node(n.additionalProperties, `${p}/additionalProperties`, true);
    if (n.items && !Array.isArray(n.items)) node(n.items, `${p}/items`, true);
    for (const j of JUNCTORS) for (const [i, s] of [].concat(n[j] || []).entries()) inJunctor(s, `${p}/${j}/${i}`, n);
  }
  node(schema, '', true);
  if (schema.type !== 'object') err('', 'root must be type object');
  const md = schema.properties && schema.properties.metadata;
  if (md) for (const k of Object.keys(md)) if (!['type', 'properties', 'description'].includes(k)) err('/properties/metadata', `only name/generateName may be restricted (found ${k})`);
  if (md && md.properties) for (const k of Object.keys(md.properties)) if (!['name', 'generateName'].includes(k)) err('/properties/metadata', `metadata.${k} may not be specified`);
  return errs;
}

function crdErrors(crd, file) {
  const errs = [];
  const e = (m) => errs.push(`${file}: ${m}`);
  if (crd.apiVersion !== 'apiextensions.k8s.io/v1' || crd.kind !== 'CustomResourceDefinition') { e('not an apiextensions.k8s.io/v1 CRD'); return errs; }
  const s = crd.spec || {}, n = s.names || {};
  if (s.group !== 'kloudlens.io') e(`group ${s.group}, want kloudlens.io`);
  if (crd.metadata.name !== `${n.plural}.${s.group}`) e(`metadata.name ${crd.metadata.name} != ${n.plural}.${s.group}`);
  if (!['Namespaced', 'Cluster'].includes(s.scope)) e(`scope ${s.scope}`);
  for (const k of ['kind', 'plural', 'singular', 'listKind']) if (!n[k]) e(`names.${k} missing`);
  if (n.singular !== (n.kind || '').toLowerCase()) e('names.singular must be the lowercased kind');
  const vs = s.versions || [];
  if (vs.filter((v) => v.storage).length !== 1) e('exactly one version must be storage');
  if (!vs.some((v) => v.name === 'v1' && v.served)) e('v1 must be served');
  for (const v of vs) {
    const sch = v.schema && v.schema.openAPIV3Schema;
    if (!sch) { e(`version ${v.name} has no openAPIV3Schema`); continue; }
    for (const m of structuralErrors(sch)) e(`${v.name} ${m}`);
    for (const c of v.additionalPrinterColumns || []) if (!c.name || !c.type || !c.jsonPath) e(`printer column ${JSON.stringify(c)} incomplete`);
  }
  return errs;
}

// ---- CRD schema -> draft-07 for ajv ---------------------------------------
// strict: additionalProperties:false on every object with properties unless it
// preserves unknown fields (what kubectl apply --validate=strict / the API
// server's Strict field validation rejects); x-kubernetes-list-type: set ->
// uniqueItems (the API server rejects duplicates). CEL rules are NOT evaluated.
function toAjv(node, strict) {
  if (Array.isArray(node)) return node.map((x) => toAjv(x, strict));
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-') || k === 'nullable' || k === 'example' || k === 'externalDocs') continue;
    if (k === 'properties') { out.properties = {}; for (const [pk, pv] of Object.entries(v)) out.properties[pk] = toAjv(pv, strict); } else out[k] = toAjv(v, strict);
  }
  if (node.nullable && out.type) out.type = [out.type, 'null'];
  if (strict && node.properties && node.additionalProperties === undefined && node['x-kubernetes-preserve-unknown-fields'] !== true)
    out.additionalProperties = false;
  if (node['x-kubernetes-list-type'] === 'set') out.uniqueItems = true;
  if (node['x-kubernetes-int-or-string']) out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  return out;
}

const DNS1123_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

function validators(crdFiles) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const byKind = {};
  for (const f of crdFiles) for (const crd of loadDocs(f)) {
    if (crd.kind !== 'CustomResourceDefinition') continue;
    const v = crd.spec.versions.find((x) => x.storage);
    const meta = { type: 'object', required: ['name'], properties: {
      name: { type: 'string', maxLength: 253, pattern: DNS1123_SUBDOMAIN } } };
    if (crd.spec.scope === 'Namespaced') meta.properties.namespace = { type: 'string', maxLength: 63, pattern: DNS1123_LABEL };
    else meta.not = { required: ['namespace'] };
    const wrap = { allOf: [{ type: 'object', required: ['apiVersion', 'kind', 'metadata'], properties: {
      apiVersion: { const: `${crd.spec.group}/${v.name}` }, kind: { const: crd.spec.names.kind }, metadata: meta } },
    toAjv(v.schema.openAPIV3Schema, true)] };
    byKind[crd.spec.names.kind] = ajv.compile(wrap);
  }
  return byKind;
}

function explain(v) {
  return (v.errors || []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}${e.params && e.params.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}`);
}

module.exports = { walk, loadDocs, structuralErrors, crdErrors, validators, explain, toAjv };
