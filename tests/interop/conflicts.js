'use strict';
// Case 3: the same document edited differently on two PouchDBs, both synced through syncd;
// then the conflict is resolved on one of them by removing the losing revision.
// argv: URL DB PARAMS where PARAMS = {"doc": {...}, "edit_a": {...}, "edit_b": {...}}.
// Steps: "conflicted" (waits for pytest), then "resolved" (the last line).
const { local, remote, replicate, step, sync, main } = require('./lib');

async function state(db, id) {
  return {
    doc: await db.get(id, { conflicts: true }),
    leaves: (await db.get(id, { open_revs: 'all' })).map((r) => (r.ok ? r.ok._rev : r)),
  };
}

main(async () => {
  const [url, db, raw] = process.argv.slice(2);
  const { doc, edit_a: editA, edit_b: editB } = JSON.parse(raw);
  const id = doc._id;
  const server = remote(url, db);
  const a = local('a');
  const b = local('b');

  // Both clients start from the same revision.
  const base = await a.put(doc);
  const setup = { push_a: await replicate(a, server), pull_b: await replicate(server, b) };

  // They edit it differently while apart ...
  const revA = (await a.put({ ...doc, ...editA, _rev: base.rev })).rev;
  const revB = (await b.put({ ...(await b.get(id)), ...editB })).rev;
  // ... and both sync through syncd, twice, so each ends up with both branches.
  const first = { a: await sync(a, server), b: await sync(b, server) };
  const second = { a: await sync(a, server), b: await sync(b, server) };
  await step('conflicted', {
    base_rev: base.rev,
    rev_a: revA,
    rev_b: revB,
    setup,
    first,
    second,
    a: await state(a, id),
    b: await state(b, id),
    remote: await state(server, id),
  });

  // Resolve on client A: delete every losing leaf, keep the winner.
  const winner = await a.get(id, { conflicts: true });
  const removed = [];
  for (const loser of winner._conflicts || []) {
    removed.push((await a.remove(id, loser)).rev);
  }
  const afterResolve = { a: await sync(a, server), b: await sync(b, server) };
  return {
    step: 'resolved',
    winner: winner._rev,
    removed,
    sync: afterResolve,
    a: await state(a, id),
    b: await state(b, id),
    remote: await state(server, id),
  };
});
