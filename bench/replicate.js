'use strict';
// The Node side of bench/replication.py: an unmodified PouchDB 9 (memory adapter for local
// databases, http adapter for servers) replicating the benchmark's pack documents.
//
//   node replicate.js push   PARAMS   write the documents into a fresh in-memory PouchDB
//                                     (untimed), then replicate it to PARAMS.url (timed)
//   node replicate.js pull   PARAMS   replicate PARAMS.url into a fresh in-memory PouchDB (timed)
//   node replicate.js memory PARAMS   the client's ceiling: memory -> memory ("push"), then
//                                     that copy -> a fresh memory database ("pull"), timed
//   node replicate.js sample PARAMS   print the first document and the documents' mean size
//
// PARAMS is one JSON argument: {"count", "seed", "batch_size", "url", "username", "password"}.
// Every mode generates the same documents from the same seed, so all targets see identical
// data. The result is one JSON line on stdout; PouchDB's own logging goes to stderr.

const { performance } = require('perf_hooks');
const { isDeepStrictEqual } = require('util');
const PouchDB = require('pouchdb');
PouchDB.plugin(require('pouchdb-adapter-memory'));

console.log = console.error;
console.info = console.error;
console.warn = console.error;

const WORDS = (
  'the a of to and in is it you that he was for on are with as his they be at one have this ' +
  'from or had by word but what some we can out other were all there when up use your how ' +
  'said an each she which do their time if will way about many then them write would like ' +
  'so these her long make thing see him two has look more day could go come did number ' +
  'sound no most people my over know water than call first who may down side been now find ' +
  'favourite remember childhood summer travel dream describe morning weekend friend family'
).split(' ');

/** mulberry32: a small deterministic PRNG, so every process makes the same documents. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(rand, n) {
  let out = '';
  for (let i = 0; i < n; i += 1) out += Math.floor(rand() * 16).toString(16);
  return out;
}

function sentence(rand, minWords, maxWords) {
  const n = minWords + Math.floor(rand() * (maxWords - minWords + 1));
  const words = [];
  for (let i = 0; i < n; i += 1) words.push(WORDS[Math.floor(rand() * WORDS.length)]);
  const text = words.join(' ');
  return `${text[0].toUpperCase()}${text.slice(1)}?`;
}

/** ``count`` pack documents of about 1 KB each, the same for the same seed. */
function packDocs(count, seed) {
  const rand = prng(seed);
  const base = Date.UTC(2025, 0, 1);
  const docs = [];
  for (let i = 0; i < count; i += 1) {
    const created = base + Math.floor(rand() * 300 * 86400000);
    const updated = created + Math.floor(rand() * 30 * 86400000);
    const prompts = [];
    const nPrompts = 5 + Math.floor(rand() * 3);
    for (let p = 0; p < nPrompts; p += 1) {
      prompts.push({ id: `p-${hex(rand, 8)}`, text: sentence(rand, 16, 28) });
    }
    docs.push({
      _id: `pack:${hex(rand, 32)}`,
      type: 'pack',
      title: sentence(rand, 3, 7).slice(0, -1),
      language: 'en',
      prompts,
      created_at: new Date(created).toISOString(),
      updated_at: new Date(updated).toISOString(),
    });
  }
  return docs;
}

let counter = 0;
function memoryDb(name) {
  counter += 1;
  return new PouchDB(`${name}-${process.pid}-${counter}`, { adapter: 'memory' });
}

function remoteDb(params) {
  const opts = {};
  if (params.username) opts.auth = { username: params.username, password: params.password };
  return new PouchDB(params.url, opts);
}

async function loaded(params) {
  const db = memoryDb('source');
  const docs = packDocs(params.count, params.seed);
  // Load in chunks: one bulkDocs of 10,000 docs is fine too, but this keeps memory flat.
  for (let i = 0; i < docs.length; i += 1000) {
    const res = await db.bulkDocs(docs.slice(i, i + 1000));
    const bad = res.find((r) => !r.ok);
    if (bad) throw new Error(`local bulkDocs failed: ${JSON.stringify(bad)}`);
  }
  return db;
}

/** One timed replication; throws unless every document arrived. */
async function timed(source, target, params) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const result = await PouchDB.replicate(source, target, { batch_size: params.batch_size });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (!result.ok || result.doc_write_failures || result.docs_written !== params.count) {
    throw new Error(
      `replication incomplete: ok=${result.ok} written=${result.docs_written} ` +
        `failures=${result.doc_write_failures} errors=${JSON.stringify(result.errors)}`,
    );
  }
  return {
    seconds,
    docs: result.docs_written,
    docs_per_s: result.docs_written / seconds,
    // this Node process's CPU (all its threads) per document during the replication
    client_cpu_us: (cpu.user + cpu.system) / result.docs_written,
  };
}

/** The target holds every document, and a sample of them equal the generated ones. */
async function verify(db, params) {
  const info = await db.info();
  if (info.doc_count !== params.count) {
    throw new Error(`expected ${params.count} docs, found ${info.doc_count}`);
  }
  const docs = packDocs(params.count, params.seed);
  const step = Math.max(1, Math.floor(docs.length / 50));
  for (let i = 0; i < docs.length; i += step) {
    const got = await db.get(docs[i]._id);
    delete got._rev;
    if (!isDeepStrictEqual(got, docs[i])) {
      throw new Error(`document ${docs[i]._id} differs after replication`);
    }
  }
}

const MODES = {
  async sample(params) {
    const docs = packDocs(params.count, params.seed);
    const sizes = docs.map((d) => Buffer.byteLength(JSON.stringify(d)));
    return {
      first: docs[0],
      mean_bytes: sizes.reduce((a, b) => a + b, 0) / sizes.length,
      min_bytes: Math.min(...sizes),
      max_bytes: Math.max(...sizes),
    };
  },

  async push(params) {
    const source = await loaded(params);
    return { push: await timed(source, remoteDb(params), params) };
  },

  async pull(params) {
    const target = memoryDb('pulled');
    const pull = await timed(remoteDb(params), target, params);
    await verify(target, params);
    return { pull };
  },

  async memory(params) {
    const source = await loaded(params);
    const copy = memoryDb('copy');
    const push = await timed(source, copy, params);
    const pulled = memoryDb('pulled');
    const pull = await timed(copy, pulled, params);
    await verify(pulled, params);
    return { push, pull };
  },
};

async function main() {
  const [mode, raw] = process.argv.slice(2);
  if (!MODES[mode]) throw new Error(`usage: node replicate.js ${Object.keys(MODES).join('|')} JSON`);
  const params = { count: 10000, seed: 1, batch_size: 100, ...JSON.parse(raw || '{}') };
  const result = await MODES[mode](params);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
