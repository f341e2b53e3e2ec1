'use strict';
// PouchDB replicating with syncd as an ordinary account, not the admin.
// argv: URL (no credentials). stdin: {"name", "password", "db", "other_db", "docs": [...]}.
//
// 1. basic:  credentials in the URL (http://name:password@host/db): push `docs`, pull them back
//            into a fresh local database.
// 2. cookie: POST /_session with fetch, then a remote whose fetch sends the AuthSession cookie:
//            push more docs, pull everything back.
// 3. denied: the same account pushes to and pulls from another account's database, with Basic,
//            with the cookie and with no credentials at all; each must fail.
// Prints {"basic": ..., "cookie": ..., "denied": {...}}.
const { PouchDB, local, replicate, snapshot, readParams, main } = require('./lib');

function withCredentials(url, name, password) {
  const u = new URL(url);
  u.username = encodeURIComponent(name);
  u.password = encodeURIComponent(password);
  return u.toString().replace(/\/$/, '');
}

async function signIn(url, name, password) {
  const resp = await fetch(`${url}/_session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  if (resp.status !== 200) throw new Error(`POST /_session answered ${resp.status}`);
  const setCookie = resp.headers.get('set-cookie') || '';
  const match = /AuthSession=([^;]*)/.exec(setCookie);
  if (!match || !match[1]) throw new Error(`no AuthSession cookie in ${setCookie}`);
  return `AuthSession=${match[1]}`;
}

function cookieRemote(url, db, cookie) {
  return new PouchDB(`${url}/${db}`, {
    fetch: (target, opts) => {
      opts.headers.set('Cookie', cookie);
      return PouchDB.fetch(target, opts);
    },
  });
}

/** Run a replication that must fail; how it failed. */
async function refused(run) {
  try {
    const result = await run();
    return { failed: false, result };
  } catch (err) {
    return { failed: true, status: err.status, name: err.name, reason: err.reason || err.message };
  }
}

main(async () => {
  const [url] = process.argv.slice(2);
  const { name, password, db, other_db: otherDb, docs } = await readParams();
  const half = Math.floor(docs.length / 2);
  const basicUrl = withCredentials(url, name, password);

  // 1. Basic credentials in the URL
  const source = local('auth-basic');
  await source.bulkDocs(docs.slice(0, half));
  const basicPush = await replicate(source, new PouchDB(`${basicUrl}/${db}`));
  const basicCopy = local('auth-basic-copy');
  const basicPull = await replicate(new PouchDB(`${basicUrl}/${db}`), basicCopy);

  // 2. the AuthSession cookie
  const cookie = await signIn(url, name, password);
  const second = local('auth-cookie');
  await second.bulkDocs(docs.slice(half));
  const cookiePush = await replicate(second, cookieRemote(url, db, cookie));
  const cookieCopy = local('auth-cookie-copy');
  const cookiePull = await replicate(cookieRemote(url, db, cookie), cookieCopy);

  // 3. another account's database
  const intruder = local('auth-intruder');
  await intruder.bulkDocs([{ _id: 'planted', text: 'must not arrive' }]);
  const denied = {
    basic_push: await refused(() => replicate(intruder, new PouchDB(`${basicUrl}/${otherDb}`))),
    basic_pull: await refused(() =>
      replicate(new PouchDB(`${basicUrl}/${otherDb}`), local('auth-stolen-basic')),
    ),
    cookie_push: await refused(() => replicate(intruder, cookieRemote(url, otherDb, cookie))),
    cookie_pull: await refused(() =>
      replicate(cookieRemote(url, otherDb, cookie), local('auth-stolen-cookie')),
    ),
    anonymous_push: await refused(() => replicate(intruder, new PouchDB(`${url}/${otherDb}`))),
  };

  return {
    basic: { push: basicPush, pull: basicPull, copy: await snapshot(basicCopy) },
    cookie: { push: cookiePush, pull: cookiePull, copy: await snapshot(cookieCopy) },
    denied,
  };
});
