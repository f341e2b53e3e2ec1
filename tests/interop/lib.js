'use strict';
// Shared helpers of the interop scripts: an unmodified PouchDB with the memory adapter for
// local databases, the http adapter for syncd, and a line protocol with pytest.
//
// Protocol: every script writes JSON objects to stdout, one per line. A one-shot script
// (run with conftest.run_node) reads its parameters as one JSON document on stdin and prints
// exactly one line, its result. A stepwise script (driven by NodeScript in
// tests/test_interop_pouchdb.py) takes its parameters as argv[3] (JSON), prints
// {"step": name, ...} lines and, where pytest must act or look at syncd first, waits for a
// JSON command line on stdin. Anything PouchDB logs goes to stderr, never to stdout.

const readline = require('readline');
const PouchDB = require('pouchdb');
PouchDB.plugin(require('pouchdb-adapter-memory'));

// Keep stdout for the protocol alone.
console.log = console.error;
console.info = console.error;
console.warn = console.error;

let counter = 0;

/** A fresh in-memory PouchDB (names are unique within the process). */
function local(name, opts = {}) {
  counter += 1;
  return new PouchDB(`${name}-${process.pid}-${counter}`, { adapter: 'memory', ...opts });
}

/** syncd's database ``db`` at ``url`` through PouchDB's http adapter. */
function remote(url, db, opts = {}) {
  return new PouchDB(`${url.replace(/\/$/, '')}/${db}`, opts);
}

/** Print one protocol line; resolves once it is handed to the OS (pipes may be async). */
function emit(obj) {
  return new Promise((resolve, reject) => {
    process.stdout.write(`${JSON.stringify(obj)}\n`, (err) => (err ? reject(err) : resolve()));
  });
}

/** stdin read whole and parsed as JSON (one-shot scripts). */
async function readParams() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? JSON.parse(text) : {};
}

let lines = null;

/** The next JSON command line on stdin (stepwise scripts). */
async function nextCommand() {
  if (lines === null) {
    lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  }
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed while waiting for a command from pytest');
  return JSON.parse(value);
}

/** Report a step to pytest and wait until it says to go on; returns its command. */
async function step(name, data = {}) {
  await emit({ step: name, ...data });
  return nextCommand();
}

/** Every document of ``db``: id -> {rev, doc} with bodies, conflicts and revision ids. */
async function snapshot(db, { revisions = false } = {}) {
  const all = await db.allDocs({ include_docs: true, conflicts: true });
  const out = {};
  for (const row of all.rows) {
    const entry = { rev: row.value.rev, doc: row.doc };
    if (revisions) {
      entry.revisions = (await db.get(row.id, { revs: true }))._revisions;
    }
    out[row.id] = entry;
  }
  return out;
}

/** The fields of a replication result pytest checks. */
function replicationResult(result) {
  return {
    ok: result.ok,
    status: result.status,
    docs_read: result.docs_read,
    docs_written: result.docs_written,
    doc_write_failures: result.doc_write_failures,
    errors: (result.errors || []).map(String),
    last_seq: result.last_seq,
  };
}

/** One-way replication ``src`` -> ``target`` to completion; its result for pytest. */
async function replicate(src, target, opts = {}) {
  return replicationResult(await PouchDB.replicate(src, target, opts));
}

/** One-shot bidirectional ``db.sync(other)``; both directions' results. */
async function sync(db, other) {
  const result = await db.sync(other);
  return { push: replicationResult(result.push), pull: replicationResult(result.pull) };
}

/** Run ``fn``; print its result (if any) and exit 0, or print the error to stderr and exit 1. */
function main(fn) {
  fn()
    .then(async (result) => {
      if (result !== undefined) await emit(result);
      process.exit(0);
    })
    .catch((err) => {
      console.error(err && err.stack ? err.stack : err);
      if (err && typeof err === 'object') console.error(JSON.stringify(err));
      process.exit(1);
    });
}

module.exports = {
  PouchDB,
  local,
  remote,
  emit,
  readParams,
  nextCommand,
  step,
  snapshot,
  replicate,
  replicationResult,
  sync,
  main,
};
