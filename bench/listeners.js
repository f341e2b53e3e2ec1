// Longpoll listeners for bench/load.py, in Node: each keeps one keep-alive connection and
// re-polls from last_seq after every answer, as PouchDB's live sync does.
//
// Why Node: the benchmark runs client and server on the same small machine; a Python client
// for 1,000 feeds took most of a core, competing with the server it measures. Times are
// process.hrtime (CLOCK_MONOTONIC on Linux, the clock of Python's time.monotonic), so wake
// times compare with the writer's ack times taken in Python.
//
// stdin, first line: {"url", "auth": [user, password] | null, "dbs": [db per listener],
//                     "query": "feed=longpoll&..."}
// stdout: "ready" once every listener has its first poll out.
// stdin, second line: {"wanted": {db: [doc ids]}, "drain_end": monotonic seconds}; the
// listeners stop once each has seen every wanted id of its db, or at drain_end.
// stdout, last line: {"listeners": [[db, {id: wake}, polls, errors, first_answer], ...],
//                     "cpu_seconds": n}
'use strict';

const http = require('http');
const readline = require('readline');

const now = () => Number(process.hrtime.bigint()) / 1e9;

function listen(config, agent, state) {
  const headers = { Accept: 'application/json' };
  if (config.auth) {
    headers.Authorization =
      'Basic ' + Buffer.from(config.auth[0] + ':' + config.auth[1]).toString('base64');
  }
  const url = new URL(config.url);
  const poll = () => {
    if (state.stopped) return;
    state.waiting = true;
    const path = `/${state.db}/_changes?${config.query}&since=${encodeURIComponent(state.since)}`;
    const req = http.request(
      { host: url.hostname, port: url.port, path, headers, agent },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          const at = now();
          state.waiting = false;
          if (res.statusCode !== 200) {
            state.errors += 1;
            setTimeout(poll, 100);
            return;
          }
          state.polls += 1;
          if (state.firstAnswer === null) state.firstAnswer = at;
          const text = Buffer.concat(chunks).toString().trim(); // heartbeat newlines first
          const body = text ? JSON.parse(text) : {};
          for (const row of body.results || []) {
            if (!(row.id in state.seen)) state.seen[row.id] = at;
          }
          if (body.last_seq !== undefined) state.since = body.last_seq;
          poll();
        });
      },
    );
    req.on('error', () => {
      state.waiting = false;
      if (state.stopped) return;
      state.errors += 1;
      setTimeout(poll, 100);
    });
    req.end();
  };
  poll();
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin });
  const iterator = lines[Symbol.asyncIterator]();
  const config = JSON.parse((await iterator.next()).value);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const states = config.dbs.map((db) => ({
    db, since: 0, seen: {}, polls: 0, errors: 0, firstAnswer: null, waiting: false,
    stopped: false,
  }));
  states.forEach((state) => listen(config, agent, state));
  await new Promise((resolve) => {
    const check = setInterval(() => {
      if (states.every((s) => s.waiting && s.polls === 0)) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  process.stdout.write('ready\n');
  const command = JSON.parse((await iterator.next()).value);
  await new Promise((resolve) => {
    const check = setInterval(() => {
      const done = states.every((s) =>
        (command.wanted[s.db] || []).every((id) => id in s.seen));
      if (done || now() >= command.drain_end) {
        clearInterval(check);
        resolve();
      }
    }, 50);
  });
  states.forEach((s) => { s.stopped = true; });
  agent.destroy();
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({
    listeners: states.map((s) => [s.db, s.seen, s.polls, s.errors, s.firstAnswer]),
    cpu_seconds: (cpu.user + cpu.system) / 1e6,
  }) + '\n', () => process.exit(0)); // a pipe is written asynchronously: exit once it is out
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
