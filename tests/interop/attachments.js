'use strict';
// Case 5: binary attachments replicate both ways with the same digest and bytes.
// argv: URL DB PARAMS where PARAMS = {"doc": {...}, "name": "icon.png",
//   "content_type": "image/png", "data": base64}.
// Steps: "pushed" (a doc with the attachment pushed from PouchDB; waits for pytest to add
// attachments on syncd and send {"ids": [ids to inspect]}), then "pulled" (the last line:
// those docs as a fresh PouchDB and the pushing PouchDB see them after pulling).
const { local, remote, replicate, step, main } = require('./lib');

async function attachments(db, id) {
  const doc = await db.get(id);
  const out = {};
  for (const [name, stub] of Object.entries(doc._attachments || {})) {
    const data = await db.getAttachment(id, name);
    out[name] = {
      content_type: stub.content_type,
      digest: stub.digest,
      length: stub.length,
      data: Buffer.from(data).toString('base64'),
    };
  }
  return { rev: doc._rev, attachments: out };
}

main(async () => {
  const [url, db, raw] = process.argv.slice(2);
  const params = JSON.parse(raw);
  const server = remote(url, db);
  const first = local('atts-a');

  const doc = {
    ...params.doc,
    _attachments: {
      [params.name]: { content_type: params.content_type, data: params.data },
    },
  };
  await first.put(doc);
  const push = await replicate(first, server);
  const cmd = await step('pushed', { replication: push, local: await attachments(first, doc._id) });

  const fresh = local('atts-b');
  const pullFresh = await replicate(server, fresh);
  const pullFirst = await replicate(server, first);
  const seen = { fresh: {}, first: {} };
  for (const id of cmd.ids) {
    seen.fresh[id] = await attachments(fresh, id);
    seen.first[id] = await attachments(first, id);
  }
  return { step: 'pulled', replication: { fresh: pullFresh, first: pullFirst }, ...seen };
});
