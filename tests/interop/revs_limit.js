'use strict';
// Case 9: long histories stemmed to revs_limit on both sides replicate consistently.
// argv: URL DB PARAMS where PARAMS = {"docs": [...], "revs_limit": N,
//   "first_edits": E1, "second_edits": E2}.
// Steps: "pushed1" (each doc written, edited E1 times, pushed), "pushed2" (edited E2 more
// times, pushed again; waits for pytest to edit the docs on syncd), "pulled" (the last line:
// the same PouchDB and a fresh one, both with revs_limit N, after pulling).
const { local, remote, replicate, step, snapshot, main } = require('./lib');

async function edit(db, revs, docs, times, start) {
  for (let n = start; n < start + times; n += 1) {
    const batch = docs.map((d) => ({ ...d, _rev: revs[d._id], edits: n }));
    for (const r of await db.bulkDocs(batch)) {
      if (!r.ok) throw new Error(`local edit failed: ${JSON.stringify(r)}`);
      revs[r.id] = r.rev;
    }
  }
}

main(async () => {
  const [url, db, raw] = process.argv.slice(2);
  const { docs, revs_limit: revsLimit, first_edits: first, second_edits: second } =
    JSON.parse(raw);
  const server = remote(url, db);
  const pouch = local('revs-a', { revs_limit: revsLimit });

  const revs = {};
  for (const r of await pouch.bulkDocs(docs)) revs[r.id] = r.rev;
  await edit(pouch, revs, docs, first, 1);
  const push1 = await replicate(pouch, server);
  await step('pushed1', {
    replication: push1,
    local: await snapshot(pouch, { revisions: true }),
  });

  await edit(pouch, revs, docs, second, 1 + first);
  const push2 = await replicate(pouch, server);
  await step('pushed2', {
    replication: push2,
    local: await snapshot(pouch, { revisions: true }),
  });

  const pullSame = await replicate(server, pouch);
  const fresh = local('revs-b', { revs_limit: revsLimit });
  const pullFresh = await replicate(server, fresh);
  return {
    step: 'pulled',
    replication: { same: pullSame, fresh: pullFresh },
    same: await snapshot(pouch, { revisions: true }),
    fresh: await snapshot(fresh, { revisions: true }),
  };
});
