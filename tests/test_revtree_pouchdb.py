"""syncd's revision trees agree with PouchDB's own implementation (the npm package pouchdb-merge).

Seeded random edit histories (branches, tombstones, resurrected tombstones, independently
created roots, generations past 9) are delivered as paths with truncated histories, in shuffled
order, under revs limits from 1 to 1000. Every case's paths go through syncd's ``merge_path``
and ``stem`` (the way ``syncd.services.documents`` applies a write) and through pouchdb-merge's
``merge(tree, path, revsLimit)``; both must end with the same winner, leaves and conflicts.

PouchDB's forest sometimes holds a rev twice (a path overlapping two of its trees is merged
into one and also kept as a tree of its own), and a copy that did not grow then reports a rev
with children as a leaf: a phantom conflict, or the same conflict listed twice. For those cases
(about a fifth; revtree_crosscheck.js reports them) the comparison is against PouchDB's answer
with those phantom leaves removed, by pouchdb-merge's own removeLeafFromTree, and repeats
collapsed. Every other case is compared with PouchDB's answer exactly as it comes.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_node

from syncd.replication import revtree
from syncd.replication.revtree import RevTree

CASES = 1500
SEED = 20240611
HEX = "0123456789abcdef"


@dataclass
class Case:
    limit: int
    paths: list[tuple[list[str], bool]]  # (newest rev first, deleted flag of the newest rev)


def _new_rev(rng: random.Random, truth: RevTree, parent: str | None) -> str:
    gen = 1 if parent is None else revtree.generation(parent) + 1
    while True:
        # Short hashes of uneven length, so ties on generation are common and "a" < "ab" matters.
        rev = f"{gen}-{''.join(rng.choice(HEX) for _ in range(rng.randint(1, 3)))}"
        if rev not in truth:
            return rev


def random_case(rng: random.Random) -> Case:
    """One document's true history, delivered as a shuffled sequence of truncated paths."""
    truth: RevTree = {}
    order: list[str] = []
    parent: str | None = None
    for step in range(rng.randint(1, 30)):
        roll = rng.random()
        if step == 0 or roll < 0.04:
            parent = None  # the document created independently on another replica
        elif roll < 0.70:
            parent = rng.choice(revtree.leaves(truth))  # an edit of a current leaf
        else:
            parent = rng.choice(order)  # an edit made elsewhere from an older rev: a branch
        rev = _new_rev(rng, truth, parent)
        truth[rev] = (parent, rng.random() < 0.25)
        order.append(rev)

    deliveries = [rev for rev in order if rng.random() < 0.85]
    deliveries += [rng.choice(order) for _ in range(rng.randint(1, 5))]  # redeliveries
    if rng.random() < 0.5:
        rng.shuffle(deliveries)
    else:
        for _ in range(rng.randint(0, 4)):
            i = rng.randrange(len(deliveries))
            j = rng.randrange(len(deliveries))
            deliveries[i], deliveries[j] = deliveries[j], deliveries[i]

    paths = []
    for rev in deliveries:
        history = revtree.ancestry(truth, rev)
        keep = len(history) if rng.random() < 0.5 else rng.randint(1, len(history))
        paths.append((history[:keep], truth[rev][1]))
    limit = rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 1000, 1000, 1000])
    return Case(limit, paths)


def syncd_result(case: Case) -> tuple[dict[str, Any], RevTree, int]:
    """Apply the paths the way syncd.services.documents does; the summary, tree, revs stemmed."""
    tree: RevTree = {}
    stemmed = 0
    for path, deleted in case.paths:
        tree, _ = revtree.merge_path(tree, path, deleted)
        if revtree.longest_branch(tree) > case.limit:
            tree, dropped = revtree.stem(tree, case.limit)
            stemmed += len(dropped)
    summary = {
        "winner": revtree.winner(tree),
        "leaves": sorted((rev, tree[rev][1]) for rev in revtree.leaves(tree)),
        "conflicts": sorted(revtree.conflicts(tree)),
        "deleted_conflicts": sorted(revtree.deleted_conflicts(tree)),
    }
    return summary, tree, stemmed


def pouchdb_summary(result: dict[str, Any], *, collapse: bool = False) -> dict[str, Any]:
    """pouchdb-merge's answer in syncd_result's shape; ``collapse`` merges repeated revs."""

    def tidy(items: Iterable[Any]) -> list[Any]:
        return sorted(set(items)) if collapse else sorted(items)

    return {
        "winner": result["winner"],
        "leaves": tidy((rev, deleted) for rev, deleted in result["leaves"]),
        "conflicts": tidy(result["conflicts"]),
        "deleted_conflicts": tidy(result["deleted_conflicts"]),
    }


def test_cases_are_reproducible() -> None:
    first = [random_case(random.Random(SEED + i)) for i in range(20)]
    again = [random_case(random.Random(SEED + i)) for i in range(20)]
    assert first == again


@pytest.mark.interop
async def test_syncd_and_pouchdb_merge_agree_on_winner_leaves_and_conflicts(
    node_modules: Path,
) -> None:
    cases = [random_case(random.Random(SEED + i)) for i in range(CASES)]
    stdin = json.dumps(
        [
            {"limit": case.limit, "paths": [{"revs": p, "deleted": d} for p, d in case.paths]}
            for case in cases
        ]
    ).encode()
    results = await run_node("revtree_crosscheck.js", stdin=stdin)
    assert len(results) == len(cases)

    mismatches = []
    seen: Counter[str] = Counter()
    for i, (case, result) in enumerate(zip(cases, results, strict=True)):
        ours, tree, stemmed = syncd_result(case)
        raw = pouchdb_summary(result["raw"])
        repaired = pouchdb_summary(result["repaired"], collapse=True)
        # Where PouchDB's forest holds every rev once, its answer is compared as it comes. Where
        # it holds some revs twice (see revtree_crosscheck.js), a copy can report as a leaf a rev
        # that has children in the other copy; those are dropped (and repeats collapsed) first.
        expected = repaired if result["duplicated"] else raw
        if ours != expected:
            mismatches.append(
                f"case {i} (seed {SEED + i}, limit {case.limit}):\n"
                f"  paths:   {case.paths}\n  syncd:   {ours}\n  pouchdb: {expected}\n"
                f"  pouchdb holds twice: {result['duplicated']}"
            )
        # What the generated cases exercised, so that the comparison means something.
        seen["conflicts"] += bool(ours["conflicts"])
        seen["deleted conflicts"] += bool(ours["deleted_conflicts"])
        seen["deleted winner"] += tree[ours["winner"]][1]
        seen["stemmed"] += stemmed > 0
        seen["several roots"] += sum(parent is None for parent, _ in tree.values()) > 1
        seen["generation past 9"] += revtree.generation(ours["winner"]) >= 10
        seen["winner decided by hash"] += any(
            rev != ours["winner"]
            and revtree.generation(rev) == revtree.generation(ours["winner"])
            and deleted == tree[ours["winner"]][1]
            for rev, deleted in ours["leaves"]
        )
        seen["compared as pouchdb-merge answers"] += not result["duplicated"]

    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n" + "\n".join(
        mismatches[:5]
    )
    thin = {what: n for what, n in seen.items() if n < 50}
    assert len(seen) == 8 and not thin, f"the random cases barely exercise {thin or seen}"
    assert seen["compared as pouchdb-merge answers"] >= CASES * 3 // 4, seen
