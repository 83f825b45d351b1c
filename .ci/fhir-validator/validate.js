#!/usr/bin/env node
// Validates FHIR resources against the FHIR R4 JSON schema with
// @asymmetrik/fhir-json-schema-validator (pinned in package.json and
// package-lock.json next to this file; .ci/fhir-check installs it with
// `npm ci` into target/fhir-validator and runs this with NODE_PATH there).
//
//   node validate.js FILE...          # one JSON resource per file
//   node validate.js < docs.json      # one JSON array of resources
//   node validate.js --json FILE...   # a JSON report on stdout instead:
//     [{"label", "resourceType", "id", "errors": [{"path", "keyword",
//       "message", "params"}]}]
//
// Exit 0 when every document is valid, 1 when any is not (each error is
// printed), 2 when the input cannot be read.
'use strict';

const fs = require('fs');
const path = require('path');
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');

function fail(message) {
  process.stderr.write(`validate.js: ${message}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const asJson = args[0] === '--json';
const files = asJson ? args.slice(1) : args;

let docs = [];
if (files.length > 0) {
  for (const file of files) {
    let doc;
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      fail(`${file}: ${e.message}`);
    }
    docs.push({ label: path.basename(file), resource: doc });
  }
} else {
  let input;
  try {
    input = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    fail(`stdin: ${e.message}`);
  }
  if (!Array.isArray(input)) {
    fail('stdin: expected one JSON array of resources');
  }
  docs = input.map((resource, i) => ({ label: `#${i}`, resource }));
}

// The package's schema (its fhir.schema.json: the FHIR 4.0 JSON schema)
// and its AJV settings ({logger: false}) plus allErrors, so that every
// problem is reported, not the first. validate() returns [] or the errors:
// AJV error objects (from a schema narrowed to the resource's type, which
// the package compiles again for each invalid document), or a string for
// an unknown resourceType. One validator only, made before any validation:
// the package narrows by writing into the schema object it shares through
// require's cache, so a validator made after an invalid document would
// accept that document's resource type only.
const validator = new JSONSchemaValidator(undefined, { logger: false, allErrors: true });

// validate() as the package does it; null only if the whole schema refused
// the document and the narrowed one did not, which must fail too.
function validate(resource) {
  const errors = validator.validate(resource);
  if (!Array.isArray(errors)) {
    return [{
      keyword: 'internal', dataPath: '', params: {},
      message: 'refused by the whole FHIR schema but not by its own resource type\'s schema',
    }];
  }
  return errors;
}

// A path as AJV 6 writes it (`.entry[0].resource`, `['a-b']`) as keys.
function keys(dataPath) {
  const out = [];
  const re = /\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]/g;
  let m;
  while ((m = re.exec(dataPath)) !== null) {
    out.push(m[1] !== undefined ? m[1] : m[2] !== undefined ? Number(m[2]) : m[3].replace(/\\(.)/g, '$1'));
  }
  return out;
}

function at(value, dataPath) {
  return keys(dataPath).reduce((v, k) => (v !== null && typeof v === 'object' ? v[k] : undefined), value);
}

function under(dataPath, prefix) {
  return dataPath === prefix || dataPath.startsWith(`${prefix}.`) || dataPath.startsWith(`${prefix}[`);
}

// Errors as {path, keyword, message, params}. A resource inside another
// (Bundle.entry.resource, contained) is checked against every resource
// type (ResourceList's oneOf), so AJV reports each type's complaints: those
// are replaced by the nested resource's own validation, path prefixed.
function condense(resource, errors, prefix) {
  if (!errors || errors.length === 0) {
    return [];
  }
  if (errors.every((e) => typeof e === 'string')) {
    return errors.map((e) => ({ path: prefix || '', keyword: 'resourceType', message: e, params: {} }));
  }
  const nested = [];
  for (const e of errors) {
    if (e.keyword === 'oneOf' && e.dataPath !== '' && !nested.some((p) => under(e.dataPath, p))) {
      // ResourceList's oneOf is the schema's only oneOf below the root.
      {
        for (let i = nested.length - 1; i >= 0; i -= 1) {
          if (under(nested[i], e.dataPath)) {
            nested.splice(i, 1);
          }
        }
        nested.push(e.dataPath);
      }
    }
  }
  let out = [];
  for (const e of errors) {
    if (nested.some((p) => under(e.dataPath, p))) {
      continue;
    }
    if (e.keyword === 'oneOf' && e.dataPath === '' && errors.length > 1) {
      continue; // "should match exactly one schema in oneOf": the reasons are the other errors
    }
    out.push({ path: prefix + e.dataPath, keyword: e.keyword, message: e.message, params: e.params || {} });
  }
  for (const p of nested) {
    const inner = at(resource, p);
    let innerErrors = [];
    if (inner && typeof inner === 'object' && !Array.isArray(inner) && typeof inner.resourceType === 'string') {
      innerErrors = condense(inner, validate(inner), prefix + p);
    } else {
      innerErrors = [{ path: prefix + p, keyword: 'required', message: 'a resource here needs a resourceType', params: {} }];
    }
    out = out.concat(innerErrors.length ? innerErrors : [{
      path: prefix + p, keyword: 'oneOf', message: 'matches no resource type, or more than one', params: {},
    }]);
  }
  const seen = new Set();
  return out.filter((e) => {
    const key = JSON.stringify([e.path, e.keyword, e.message, e.params]);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

function describe(e) {
  const params = Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
  return `${e.path || '(root)'}: ${e.message}${params}`;
}

const report = [];
for (const { label, resource } of docs) {
  let errors;
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    errors = [{ path: '', keyword: 'type', message: 'not a JSON object', params: {} }];
  } else {
    errors = condense(resource, validate(resource), '');
  }
  report.push({ label, resourceType: resource && resource.resourceType, id: resource && resource.id, errors });
}

const invalid = report.filter((r) => r.errors.length > 0);
if (asJson) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  for (const r of invalid) {
    const what = [r.resourceType, r.id].filter(Boolean).join('/');
    process.stdout.write(`INVALID ${r.label}${what ? ` (${what})` : ''}\n`);
    for (const e of r.errors) {
      process.stdout.write(`  ${describe(e)}\n`);
    }
  }
  process.stdout.write(
    `FHIR R4 JSON schema: ${report.length - invalid.length} of ${report.length} documents valid\n`,
  );
}
process.exit(invalid.length ? 1 : 0);
