'use strict';
// Case 6: a second replication after adding documents transfers only the new ones.
// argv: URL DB PARAMS where PARAMS = {"first": [docs], "second": [docs]}.
// Steps: "push1", "push2" (pushing "first", then "second" in the same direction), "pull1"
// (a fresh PouchDB pulls everything; waits for pytest to add docs on syncd), "pull2" (the
// last line: the same PouchDB pulls again).
const { local, remote, replicate, step, main } = require('./lib');

main(async () => {
  const [url, db, raw] = process.argv.slice(2);
  const { first, second } = JSON.parse(raw);
  const server = remote(url, db);

  const source = local('ckpt-src');
  await source.bulkDocs(first);
  await step('push1', { replication: await replicate(source, server) });
  await source.bulkDocs(second);
  await step('push2', { replication: await replicate(source, server) });

  const target = local('ckpt-dst');
  await step('pull1', { replication: await replicate(server, target) });
  const pull2 = await replicate(server, target);
  const all = await target.allDocs();
  return { step: 'pull2', replication: pull2, ids: all.rows.map((r) => r.id) };
});
