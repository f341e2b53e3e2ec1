'use strict';
// Case 4: deletions replicate both ways.
// argv: URL DB PARAMS where PARAMS = {"docs": [...], "delete_locally": [ids]}.
// Steps: "pushed" (all docs pushed), "deleted_locally" (tombstones pushed; waits for pytest
// to delete other docs on syncd and send {"deleted_on_server": {id: tombstone rev}}), then
// "pulled" (the last line: the local view after pulling those deletions).
const { local, remote, replicate, step, main } = require('./lib');

async function localState(db, ids) {
  const out = {};
  for (const id of ids) {
    try {
      const doc = await db.get(id);
      out[id] = { live: true, rev: doc._rev };
    } catch (err) {
      if (err.status !== 404) throw err;
      // A tombstone is still readable by its rev; its id shows in changes as deleted.
      out[id] = { live: false, error: err.reason || err.message };
    }
  }
  const changes = await db.changes({ style: 'all_docs' });
  const feed = {};
  for (const c of changes.results) {
    feed[c.id] = { deleted: !!c.deleted, revs: c.changes.map((r) => r.rev) };
  }
  return { docs: out, changes: feed };
}

main(async () => {
  const [url, db, raw] = process.argv.slice(2);
  const { docs, delete_locally: deleteLocally } = JSON.parse(raw);
  const ids = docs.map((d) => d._id);
  const server = remote(url, db);
  const pouch = local('deletions');

  await pouch.bulkDocs(docs);
  const push1 = await replicate(pouch, server);
  await step('pushed', { replication: push1, local: await localState(pouch, ids) });

  const tombstones = {};
  for (const id of deleteLocally) {
    const doc = await pouch.get(id);
    tombstones[id] = (await pouch.remove(doc)).rev;
  }
  const push2 = await replicate(pouch, server);
  const cmd = await step('deleted_locally', { replication: push2, tombstones });

  const pull = await replicate(server, pouch);
  const deletedOnServer = cmd.deleted_on_server;
  const tombstoneDocs = {};
  for (const [id, rev] of Object.entries(deletedOnServer)) {
    tombstoneDocs[id] = await pouch.get(id, { rev });
  }
  return {
    step: 'pulled',
    replication: pull,
    local: await localState(pouch, ids),
    tombstones: tombstoneDocs,
  };
});
