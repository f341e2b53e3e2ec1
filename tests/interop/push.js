'use strict';
// Case 1: write documents into a fresh local PouchDB, push them to syncd.
// argv: URL DB; stdin: {"docs": [...]}. Prints {"replication": ..., "local": snapshot}.
const { local, remote, readParams, replicate, snapshot, main } = require('./lib');

main(async () => {
  const [url, db] = process.argv.slice(2);
  const { docs } = await readParams();
  const source = local('push');
  const written = await source.bulkDocs(docs);
  const failed = written.filter((r) => !r.ok);
  if (failed.length) throw new Error(`local bulkDocs failed: ${JSON.stringify(failed[0])}`);
  const replication = await replicate(source, remote(url, db));
  return { replication, local: await snapshot(source) };
});
