'use strict';
// Case 2: pull everything from syncd into a fresh local PouchDB.
// argv: URL DB; stdin: {"revs_limit"?: N, "revisions"?: bool}.
// Prints {"replication": ..., "local": snapshot}.
const { local, remote, readParams, replicate, snapshot, main } = require('./lib');

main(async () => {
  const [url, db] = process.argv.slice(2);
  const params = await readParams();
  const opts = params.revs_limit ? { revs_limit: params.revs_limit } : {};
  const target = local('pull', opts);
  const replication = await replicate(remote(url, db), target);
  return { replication, local: await snapshot(target, { revisions: !!params.revisions }) };
});
