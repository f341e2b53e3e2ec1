"""Revision trees, the way CouchDB's couch_key_tree and PouchDB's pouchdb-merge see them.

A tree is stored flat: ``{rev: (parent_rev | None, deleted)}``. A rev id ``N-hash`` carries its
own generation, so a node is identified by its id alone and merging two trees is a union of
their maps. A node whose parent is ``None`` is a root: generation 1, or the oldest revision
kept after stemming. Leaves are the nodes nobody names as parent.

Everything here is pure: no I/O, no globals. The rules it must match:

* winner: non-deleted leaves first, then the highest generation, then the highest rev string;
* conflicts: the other non-deleted leaves; deleted conflicts: the other deleted leaves;
* stemming to ``limit`` keeps, for every leaf, the leaf and its ``limit - 1`` nearest ancestors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

Node = tuple[str | None, bool]
RevTree = dict[str, Node]
MergeStatus = Literal["new_leaf", "new_branch", "internal_node"]


def parse_rev(rev: str) -> tuple[int, str]:
    """Split ``N-hash`` into ``(N, hash)``; raise ValueError for anything else."""
    gen, sep, digest = rev.partition("-")
    if not sep or not digest or not (gen.isascii() and gen.isdigit()) or len(gen) > 9:
        raise ValueError(f"invalid rev {rev!r}")
    return int(gen), digest


def generation(rev: str) -> int:
    """The generation (the ``N`` of ``N-hash``) of a well-formed rev id."""
    return int(rev.partition("-")[0])


def rev_key(rev: str) -> tuple[int, str]:
    """Sort key for revs: generation first, then the hash as a string."""
    gen, _, digest = rev.partition("-")
    return int(gen), digest


def from_json(data: Mapping[str, Sequence[object]]) -> RevTree:
    """Rebuild a tree from its JSON form ``{rev: [parent, deleted]}``."""
    return {rev: (node[0], bool(node[1])) for rev, node in data.items()}  # type: ignore[misc]


def to_json(tree: RevTree) -> dict[str, list[object]]:
    """The JSON form of a tree: ``{rev: [parent, 0|1]}``."""
    return {rev: [parent, 1 if deleted else 0] for rev, (parent, deleted) in tree.items()}


def leaves(tree: RevTree) -> list[str]:
    """Every leaf rev, in no particular order."""
    parents = {parent for parent, _ in tree.values()}
    return [rev for rev in tree if rev not in parents]


def _winner_key(tree: RevTree, rev: str) -> tuple[bool, int, str]:
    gen, digest = rev_key(rev)
    return (not tree[rev][1], gen, digest)


def sorted_leaves(tree: RevTree) -> list[str]:
    """Leaves ordered best first: the winner, then the others as CouchDB orders them."""
    return sorted(leaves(tree), key=lambda rev: _winner_key(tree, rev), reverse=True)


def winner(tree: RevTree) -> str:
    """The winning rev: non-deleted beats deleted, then generation, then rev string."""
    return max(leaves(tree), key=lambda rev: _winner_key(tree, rev))


def is_deleted(tree: RevTree, rev: str) -> bool:
    """Whether ``rev`` is a deletion (tombstone)."""
    return tree[rev][1]


def conflicts(tree: RevTree) -> list[str]:
    """Non-deleted leaves other than the winner, best first (CouchDB's ``_conflicts``)."""
    ordered = sorted_leaves(tree)
    return [rev for rev in ordered[1:] if not tree[rev][1]]


def deleted_conflicts(tree: RevTree) -> list[str]:
    """Deleted leaves other than the winner, best first (``_deleted_conflicts``)."""
    ordered = sorted_leaves(tree)
    return [rev for rev in ordered[1:] if tree[rev][1]]


def ancestry(tree: RevTree, rev: str) -> list[str]:
    """``rev`` followed by its ancestors, newest first, as far as the tree knows them."""
    out = []
    current: str | None = rev
    while current is not None:
        out.append(current)
        current = tree[current][0]
    return out


def revisions(tree: RevTree, rev: str) -> dict[str, object]:
    """CouchDB's ``_revisions`` for ``rev``: ``{"start": N, "ids": [hash, ...]}``."""
    path = ancestry(tree, rev)
    return {"start": generation(rev), "ids": [r.partition("-")[2] for r in path]}


def path_from_revisions(start: int, ids: Sequence[str]) -> list[str]:
    """Turn a ``_revisions`` object into rev ids, newest first."""
    return [f"{start - i}-{digest}" for i, digest in enumerate(ids)]


def merge_path(tree: RevTree, path: Sequence[str], deleted: bool) -> tuple[RevTree, MergeStatus]:
    """Merge a path (newest rev first, then its ancestors) into a copy of ``tree``.

    ``deleted`` is the deleted flag of the newest rev. Returns the new tree and what the path
    was to the old tree, as couch_key_tree:merge reports it: ``new_leaf`` when its new revs
    extend an old leaf (or start an empty tree), ``new_branch`` when they fork from an inner
    node or share nothing with the tree, ``internal_node`` when its newest rev was known.
    """
    known = next((i for i, rev in enumerate(path) if rev in tree), None)
    merged = dict(tree)
    for i, rev in enumerate(path):
        parent = path[i + 1] if i + 1 < len(path) else None
        node = merged.get(rev)
        if node is None:
            merged[rev] = (parent, False)
        elif node[0] is None and parent is not None:
            # A stemmed root (or a piece that arrived with a short history): the path knows
            # its parent. Keep walking: older revs may join it to another piece of the tree.
            merged[rev] = (parent, node[1])
    old_leaves = set(leaves(tree)) if known is not None else set()
    if known != 0 or path[0] not in old_leaves:
        # An inner node may be known only as some path's ancestor, whose deleted flag nobody
        # gave; the path brings the revision itself. A known leaf keeps what it has.
        merged[path[0]] = (merged[path[0]][0], deleted)
    if known == 0:
        return merged, "internal_node"
    if known is None:
        return merged, "new_leaf" if not tree else "new_branch"
    return merged, "new_leaf" if path[known] in old_leaves else "new_branch"


def merge_trees(a: RevTree, b: RevTree) -> RevTree:
    """Union of two trees of the same document."""
    merged = dict(a)
    for rev, (parent, deleted) in b.items():
        known = merged.get(rev)
        if known is None:
            merged[rev] = (parent, deleted)
        else:
            # Either side may know the rev only as an ancestor (not deleted, and maybe as a
            # stemmed root): take the parent and the deletion whichever side knows them.
            merged[rev] = (known[0] or parent, known[1] or deleted)
    return merged


def stem(tree: RevTree, limit: int) -> tuple[RevTree, list[str]]:
    """Keep each leaf and its ``limit - 1`` nearest ancestors; return the tree and what went.

    As in couch_key_tree:stem, a kept rev keeps its kept parent: a branch that shares an
    ancestor a shorter branch still needs can stay longer than ``limit``.
    """
    keep: set[str] = set()
    for leaf in leaves(tree):
        current: str | None = leaf
        depth = 0
        while current is not None and depth < limit:
            keep.add(current)
            current = tree[current][0]
            depth += 1
    if len(keep) == len(tree):
        return tree, []
    stemmed = {
        rev: (parent if parent in keep else None, deleted)
        for rev, (parent, deleted) in tree.items()
        if rev in keep
    }
    return stemmed, [rev for rev in tree if rev not in keep]


def longest_branch(tree: RevTree) -> int:
    """Length of the longest leaf-to-root path (used to decide whether to stem)."""
    return max(len(ancestry(tree, leaf)) for leaf in leaves(tree))


def missing_revs(tree: RevTree | None, revs: Iterable[str]) -> tuple[list[str], list[str]]:
    """For revs_diff: the revs the tree lacks, and the leaves that could be their ancestors."""
    wanted = list(dict.fromkeys(revs))
    if tree is None:
        return wanted, []
    missing = [rev for rev in wanted if rev not in tree]
    if not missing:
        return [], []
    top = max(generation(rev) for rev in missing)
    ancestors = sorted(
        (leaf for leaf in leaves(tree) if generation(leaf) < top), key=rev_key, reverse=True
    )
    return missing, ancestors


def latest_leaves(tree: RevTree, rev: str) -> list[str]:
    """The leaves descending from ``rev`` (``rev`` itself when it is a leaf)."""
    children: dict[str, list[str]] = {}
    for node, (parent, _) in tree.items():
        if parent is not None:
            children.setdefault(parent, []).append(node)
    found = []
    stack = [rev]
    while stack:
        node = stack.pop()
        kids = children.get(node)
        if kids:
            stack.extend(kids)
        else:
            found.append(node)
    return sorted(found, key=rev_key, reverse=True)
