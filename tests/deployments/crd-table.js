// Prints the field table of a CRD (docs/control-plane.md embeds these):
//   NODE_PATH=tests/contractc/node/node_modules node tests/deployments/crd-table.js deployments/kubernetes/crds/X.yaml
const yaml = require('js-yaml'), fs = require('fs');
const f = process.argv[2];
const crd = yaml.load(fs.readFileSync(f, 'utf8'));
const s = crd.spec.versions[0].schema.openAPIV3Schema;
const rows = [];
function t(n) {
  if (n['x-kubernetes-preserve-unknown-fields'] && !n.type) {
    if (n.required && n.required[0] === 'path') return 'string or object';
    if (n.required && n.required[0] === 'port') return 'integer or object';
    if (n.required && n.required[0] === 'name') return 'string or object';
  }
  if (n.type === 'array') return `list of ${t(n.items)}`;
  if (n.type === 'object' && n.additionalProperties) return 'map of string';
  return n.type;
}
function cons(n, req) {
  const c = [];
  if (req) c.push('**required**');
  if (n.enum) c.push('one of ' + n.enum.map((e) => '`' + e + '`').join(', '));
  if (n.minimum !== undefined && n.maximum !== undefined) c.push(`${n.minimum}..${n.maximum}`);
  else if (n.minimum !== undefined) c.push(`>= ${n.minimum}`);
  if (n.minItems) c.push(`>= ${n.minItems} item${n.minItems > 1 ? 's' : ''}`);
  if (n['x-kubernetes-list-type'] === 'set') c.push('no duplicates');
  if (n.minProperties) c.push('not empty');
  if (n.maxProperties === 1) c.push('exactly one key');
  if (n.format === 'date-time') c.push('RFC 3339');
  if (n.default !== undefined) c.push('default `' + JSON.stringify(n.default) + '`');
  if (n.pattern && n.pattern.length < 50) c.push('pattern `' + n.pattern.replace(/\|/g, '\\|') + '`');
  if (n.items && n.items.enum && n.items.enum.length < 10) c.push('items: ' + n.items.enum.map((e) => '`' + e + '`').join(', '));
  return c.join('; ');
}
function walk(n, p, req) {
  if (p) rows.push(`| \`${p}\` | ${t(n)} | ${cons(n, req)} | ${(n.description || '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
  let sub = n.properties ? n : n.type === 'array' && n.items && n.items.properties ? n.items : null;
  if (!sub) return;
  const pre = n.type === 'array' ? p + '[]' : p;
  for (const [k, v] of Object.entries(sub.properties)) walk(v, pre ? `${pre}.${k}` : k, (sub.required || []).includes(k));
}
walk(s.properties.spec, 'spec', true);
if (s.properties.status) walk(s.properties.status, 'status', false);
console.log('| field | type | rules | meaning |\n|---|---|---|---|\n' + rows.join('\n'));
