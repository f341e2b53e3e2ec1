'use strict';
// Case 7: live bidirectional sync, db.sync(remote, {live: true, retry: true}), driven by
// pytest, which also stops and restarts syncd underneath it.
// argv: URL DB PARAMS where PARAMS = {"back_off_ms": N}.
// Prints {"step": "ready"} once the first sync round is idle, then answers one line per
// command read from stdin:
//   {"op": "put", "docs": [...]}                        -> {"step": "put", "revs": {id: rev}}
//   {"op": "wait", "revs": {id: rev}, "timeout_ms": T}  -> {"step": "wait", "ok", "elapsed_ms", "have"}
//   {"op": "snapshot"}                                  -> {"step": "snapshot", "local", "events"}
//   {"op": "stop"}                                      -> {"step": "stopped", "events"} and exit
const { local, remote, nextCommand, emit, snapshot, main } = require('./lib');

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function currentRevs(db, ids) {
  const res = await db.allDocs({ keys: ids });
  const have = {};
  for (const row of res.rows) {
    have[row.key] = row.value && !row.value.deleted ? row.value.rev : null;
  }
  return have;
}

main(async () => {
  const [url, db, raw] = process.argv.slice(2);
  const params = JSON.parse(raw || '{}');
  const pouch = local('live');
  const events = {
    active: 0,
    paused: 0,
    change: 0,
    denied: 0,
    errors: [],
    request_errors: { push: 0, pull: 0 },
    unhandled_rejections: [],
  };
  // PouchDB 9 leaves a rejected fetch unhandled now and then while the server is down
  // (FetchError ... ECONNREFUSED). A browser only logs that; Node would exit, so record it
  // the way a browser would and let pytest judge what it was.
  process.on('unhandledRejection', (reason) => {
    events.unhandled_rejections.push(String(reason && reason.message ? reason.message : reason));
  });

  const sync = pouch.sync(remote(url, db), {
    live: true,
    retry: true,
    back_off_function: () => params.back_off_ms,
  });
  const firstIdle = new Promise((resolve, reject) => {
    sync.once('paused', resolve);
    sync.once('error', reject);
  });
  const completed = new Promise((resolve) => sync.on('complete', resolve));
  sync.on('active', () => { events.active += 1; });
  sync.on('paused', () => { events.paused += 1; });
  // Failed requests (syncd down) that retry: true backs off from, per direction.
  sync.push.on('requestError', () => { events.request_errors.push += 1; });
  sync.pull.on('requestError', () => { events.request_errors.pull += 1; });
  sync.on('change', () => { events.change += 1; });
  sync.on('denied', () => { events.denied += 1; });
  sync.on('error', (err) => { events.errors.push(String(err)); });

  await firstIdle;
  await emit({ step: 'ready' });

  for (;;) {
    const cmd = await nextCommand();
    if (cmd.op === 'put') {
      const revs = {};
      for (const r of await pouch.bulkDocs(cmd.docs)) {
        if (!r.ok) throw new Error(`local write failed: ${JSON.stringify(r)}`);
        revs[r.id] = r.rev;
      }
      await emit({ step: 'put', revs });
    } else if (cmd.op === 'wait') {
      const ids = Object.keys(cmd.revs);
      const started = Date.now();
      let have = await currentRevs(pouch, ids);
      const arrived = () => ids.every((id) => have[id] === cmd.revs[id]);
      while (!arrived() && Date.now() - started < cmd.timeout_ms) {
        await sleep(10);
        have = await currentRevs(pouch, ids);
      }
      await emit({ step: 'wait', ok: arrived(), elapsed_ms: Date.now() - started, have });
    } else if (cmd.op === 'snapshot') {
      await emit({ step: 'snapshot', local: await snapshot(pouch), events });
    } else if (cmd.op === 'stop') {
      sync.cancel();
      await completed;
      return { step: 'stopped', events };
    } else {
      throw new Error(`unknown command ${JSON.stringify(cmd)}`);
    }
  }
});
