'use strict';
// Cross-check for syncd/replication/revtree.py against PouchDB's own rev-tree code.
//
// stdin: a JSON array of cases, each {"limit": N, "paths": [{"revs": [...], "deleted": bool}]}
// where "revs" is a path newest rev first ("4-d", "3-c", ...), as syncd's merge_path takes it.
// Each case's tree is built the way PouchDB builds it: starting from [], every path is turned
// into a single-branch rev_tree (as pouchdb-adapter-utils' makeRevTreeFromRevisions does:
// the newest rev carries {status: 'available', deleted?}, its ancestors {status: 'missing'})
// and merged with pouchdb-merge's merge(tree, path, revsLimit), which also stems.
//
// stdout: a JSON array, one entry per case:
//   raw:        what pouchdb-merge reports for the tree it built: winningRev, collectLeaves
//               (rev and deleted flag), collectConflicts, and the deleted leaves other than the
//               winner (PouchDB has no helper for those; derived from collectLeaves);
//   duplicated: the revs PouchDB's forest holds in more than one place;
//   repaired:   the same four after dropping, with pouchdb-merge's removeLeafFromTree, every
//               "leaf" that the same forest holds elsewhere as an inner node (see below).
//
// Why "repaired": when a path overlaps two trees of the forest (say the main tree and a piece
// that arrived earlier with a short history), doMerge merges the path into the first and also
// keeps the path as a tree of its own. The forest then holds those revs twice, and a later path
// can grow one copy but not the other, so a rev with children in one copy is a leaf in the
// other; collectLeaves, collectConflicts and winningRev report it as a leaf.

const fs = require('fs');
const {
  merge,
  winningRev,
  collectLeaves,
  collectConflicts,
  removeLeafFromTree,
} = require('pouchdb-merge');

function splitRev(rev) {
  const dash = rev.indexOf('-');
  return { pos: parseInt(rev.slice(0, dash), 10), id: rev.slice(dash + 1) };
}

function toPouchPath(revs, deleted) {
  const head = splitRev(revs[0]);
  const opts = { status: 'available' };
  if (deleted) {
    opts.deleted = true;
  }
  let ids = [head.id, opts, []];
  for (let i = 1; i < revs.length; i++) {
    ids = [splitRev(revs[i]).id, { status: 'missing' }, [ids]];
  }
  return { pos: head.pos - revs.length + 1, ids };
}

function forestFacts(tree) {
  const count = new Map();
  const inner = new Set();
  const toVisit = tree.map((branch) => ({ pos: branch.pos, ids: branch.ids }));
  let node;
  while ((node = toVisit.pop())) {
    const rev = node.pos + '-' + node.ids[0];
    count.set(rev, (count.get(rev) || 0) + 1);
    if (node.ids[2].length) {
      inner.add(rev);
    }
    for (const child of node.ids[2]) {
      toVisit.push({ pos: node.pos + 1, ids: child });
    }
  }
  const duplicated = [...count].filter(([, n]) => n > 1).map(([rev]) => rev);
  return { duplicated: duplicated.sort(), inner };
}

function summary(tree) {
  const metadata = { rev_tree: tree };
  const winner = winningRev(metadata);
  const leaves = collectLeaves(tree);
  return {
    winner,
    leaves: leaves.map((leaf) => [leaf.rev, !!leaf.opts.deleted]),
    conflicts: collectConflicts(metadata),
    deleted_conflicts: leaves
      .filter((leaf) => leaf.rev !== winner && leaf.opts.deleted)
      .map((leaf) => leaf.rev),
  };
}

function repair(tree) {
  for (;;) {
    const { inner } = forestFacts(tree);
    const phantom = collectLeaves(tree).find((leaf) => inner.has(leaf.rev));
    if (!phantom) {
      return tree;
    }
    tree = removeLeafFromTree(tree, phantom.rev);
  }
}

function runCase(testCase) {
  let tree = [];
  for (const path of testCase.paths) {
    tree = merge(tree, toPouchPath(path.revs, path.deleted), testCase.limit).tree;
  }
  return {
    raw: summary(tree),
    duplicated: forestFacts(tree).duplicated,
    repaired: summary(repair(tree)),
  };
}

const cases = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(cases.map(runCase)));
