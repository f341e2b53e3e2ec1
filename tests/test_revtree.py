"""The revision tree, as a specification: what CouchDB's couch_key_tree and PouchDB's
pouchdb-merge do, in syncd's flat form ``{rev: (parent | None, deleted)}``.

The first part states one behaviour per test on small hand-made trees; the second part checks
properties over random edit histories with hypothesis.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.replication import revtree
from syncd.replication.revtree import RevTree

# 1-a ─ 2-b ─ 3-c
LINEAR: RevTree = {"1-a": (None, False), "2-b": ("1-a", False), "3-c": ("2-b", False)}

# 1-a ─ 2-b ─ 3-c
#     └ 2-x ─ 3-y ─ 4-z (deleted)
#           └ 3-w
BRANCHED: RevTree = {
    "1-a": (None, False),
    "2-b": ("1-a", False),
    "3-c": ("2-b", False),
    "2-x": ("1-a", False),
    "3-y": ("2-x", False),
    "4-z": ("3-y", True),
    "3-w": ("2-x", False),
}


def tree_from_paths(*paths: list[str], deleted: frozenset[str] = frozenset()) -> RevTree:
    """Merge paths (newest rev first) into an empty tree; revs in ``deleted`` are tombstones."""
    tree: RevTree = {}
    for path in paths:
        tree, _ = revtree.merge_path(tree, path, path[0] in deleted)
    return tree


# --- rev ids --------------------------------------------------------------------------------


def test_parse_rev_splits_generation_and_hash() -> None:
    assert revtree.parse_rev("12-abc") == (12, "abc")


@pytest.mark.parametrize(
    "rev", ["", "abc", "-abc", "3-", "3", "x-abc", " 3-abc", "+3-abc", "1234567890-a", "٣-abc"]
)
def test_parse_rev_rejects_anything_but_ascii_digits_dash_hash(rev: str) -> None:
    with pytest.raises(ValueError, match="invalid rev"):
        revtree.parse_rev(rev)


def test_generation_is_the_number_before_the_dash() -> None:
    assert revtree.generation("10-ff") == 10


def test_rev_key_orders_generations_as_numbers_then_hashes_as_strings() -> None:
    revs = ["10-a", "9-z", "2-b", "2-ab", "2-a"]
    assert sorted(revs, key=revtree.rev_key) == ["2-a", "2-ab", "2-b", "9-z", "10-a"]


def test_json_form_round_trips() -> None:
    data = revtree.to_json(BRANCHED)
    assert data["4-z"] == ["3-y", 1]
    assert data["1-a"] == [None, 0]
    assert revtree.from_json(data) == BRANCHED


# --- leaves, winner, conflicts -------------------------------------------------------------


def test_leaves_are_the_revs_nobody_names_as_parent() -> None:
    assert set(revtree.leaves(BRANCHED)) == {"3-c", "4-z", "3-w"}


def test_leaves_of_a_stemmed_forest_include_every_piece() -> None:
    tree: RevTree = {"5-e": (None, False), "6-f": ("5-e", False), "2-q": (None, True)}
    assert set(revtree.leaves(tree)) == {"6-f", "2-q"}


def test_winner_prefers_a_live_leaf_to_a_deleted_leaf_of_higher_generation() -> None:
    assert revtree.winner(BRANCHED) == "3-w"  # 4-z is deleted; 3-w > 3-c by hash


def test_winner_among_live_leaves_is_the_highest_generation() -> None:
    tree = {**LINEAR, "2-z": ("1-a", False)}
    assert revtree.winner(tree) == "3-c"


def test_winner_breaks_a_generation_tie_by_the_highest_hash_string() -> None:
    tree: RevTree = {"1-a": (None, False), "2-ab": ("1-a", False), "2-b": ("1-a", False)}
    assert revtree.winner(tree) == "2-b"
    tree = {"1-a": (None, False), "2-a": ("1-a", False), "2-ab": ("1-a", False)}
    assert revtree.winner(tree) == "2-ab"


def test_winner_compares_generations_as_numbers() -> None:
    tree: RevTree = {"9-z": (None, False), "10-a": (None, False)}
    assert revtree.winner(tree) == "10-a"


def test_winner_of_a_fully_deleted_document_is_its_best_tombstone() -> None:
    tree: RevTree = {"1-a": (None, False), "2-b": ("1-a", True), "3-c": (None, True)}
    assert revtree.winner(tree) == "3-c"
    assert revtree.is_deleted(tree, "3-c")


def test_sorted_leaves_lists_the_winner_first_then_the_rest_by_the_same_rules() -> None:
    tree = {**BRANCHED, "5-d": ("4-z", True)}  # a tombstone on a tombstone
    assert revtree.sorted_leaves(tree) == ["3-w", "3-c", "5-d"]


def test_conflicts_are_the_other_live_leaves_best_first() -> None:
    tree = {**BRANCHED, "2-zz": ("1-a", False)}
    assert revtree.conflicts(tree) == ["3-c", "2-zz"]


def test_conflicts_leave_out_deleted_leaves() -> None:
    assert revtree.conflicts(BRANCHED) == ["3-c"]


def test_a_document_with_one_leaf_has_no_conflicts() -> None:
    assert revtree.conflicts(LINEAR) == []
    assert revtree.deleted_conflicts(LINEAR) == []


def test_deleted_conflicts_are_the_other_deleted_leaves_best_first() -> None:
    tree = {**BRANCHED, "3-q": ("2-b", True)}
    assert revtree.deleted_conflicts(tree) == ["4-z", "3-q"]


def test_a_deleted_winner_is_not_its_own_deleted_conflict() -> None:
    tree: RevTree = {"1-a": (None, False), "2-b": ("1-a", True), "2-c": ("1-a", True)}
    assert revtree.winner(tree) == "2-c"
    assert revtree.deleted_conflicts(tree) == ["2-b"]
    assert revtree.conflicts(tree) == []


# --- history ---------------------------------------------------------------------------------


def test_ancestry_is_the_rev_then_its_ancestors_newest_first() -> None:
    assert revtree.ancestry(BRANCHED, "4-z") == ["4-z", "3-y", "2-x", "1-a"]


def test_ancestry_stops_at_a_stemmed_root() -> None:
    tree: RevTree = {"7-g": (None, False), "8-h": ("7-g", False)}
    assert revtree.ancestry(tree, "8-h") == ["8-h", "7-g"]


def test_revisions_is_couchdb_revisions_object() -> None:
    assert revtree.revisions(BRANCHED, "4-z") == {"start": 4, "ids": ["z", "y", "x", "a"]}


def test_path_from_revisions_turns_revisions_back_into_rev_ids() -> None:
    assert revtree.path_from_revisions(4, ["z", "y", "x", "a"]) == ["4-z", "3-y", "2-x", "1-a"]
    assert revtree.path_from_revisions(4, ["z", "y", "x", "a"]) == revtree.ancestry(BRANCHED, "4-z")


def test_longest_branch_counts_revs_from_leaf_to_root() -> None:
    assert revtree.longest_branch(BRANCHED) == 4
    assert revtree.longest_branch({"9-i": (None, False)}) == 1


# --- merge_path ------------------------------------------------------------------------------


def test_the_first_path_of_a_document_is_a_new_leaf() -> None:
    tree, status = revtree.merge_path({}, ["2-b", "1-a"], False)
    assert status == "new_leaf"
    assert tree == {"1-a": (None, False), "2-b": ("1-a", False)}


def test_extending_a_leaf_is_a_new_leaf() -> None:
    tree, status = revtree.merge_path(LINEAR, ["4-d", "3-c", "2-b", "1-a"], False)
    assert status == "new_leaf"
    assert revtree.leaves(tree) == ["4-d"]


def test_extending_a_leaf_by_several_revs_at_once_is_a_new_leaf() -> None:
    tree, status = revtree.merge_path(LINEAR, ["5-e", "4-d", "3-c"], False)
    assert status == "new_leaf"
    assert revtree.ancestry(tree, "5-e") == ["5-e", "4-d", "3-c", "2-b", "1-a"]


def test_forking_from_an_inner_rev_is_a_new_branch() -> None:
    tree, status = revtree.merge_path(LINEAR, ["3-x", "2-b", "1-a"], False)
    assert status == "new_branch"
    assert set(revtree.leaves(tree)) == {"3-c", "3-x"}


def test_a_path_sharing_no_rev_with_the_tree_is_a_new_branch() -> None:
    tree, status = revtree.merge_path(LINEAR, ["2-q", "1-p"], False)
    assert status == "new_branch"
    assert set(revtree.leaves(tree)) == {"3-c", "2-q"}


def test_a_path_whose_newest_rev_is_known_is_an_internal_node_and_changes_nothing() -> None:
    for path in (["2-b", "1-a"], ["3-c", "2-b", "1-a"], ["3-c", "2-b"]):
        tree, status = revtree.merge_path(LINEAR, path, False)
        assert status == "internal_node"
        assert tree == LINEAR


def test_merge_path_marks_only_the_newest_rev_deleted() -> None:
    tree, _ = revtree.merge_path(LINEAR, ["5-e", "4-d", "3-c"], True)
    assert tree["5-e"] == ("4-d", True)
    assert tree["4-d"] == ("3-c", False)


def test_merge_path_does_not_touch_the_tree_it_was_given() -> None:
    before = dict(LINEAR)
    revtree.merge_path(LINEAR, ["4-d", "3-c"], True)
    assert before == LINEAR


def test_merge_extends_a_stemmed_root_when_the_path_knows_more_history() -> None:
    stemmed: RevTree = {"3-c": (None, False), "4-d": ("3-c", False)}
    tree, status = revtree.merge_path(stemmed, ["4-d", "3-c", "2-b", "1-a"], False)
    assert status == "internal_node"
    assert revtree.ancestry(tree, "4-d") == ["4-d", "3-c", "2-b", "1-a"]


def test_merge_extends_a_stemmed_root_behind_revs_the_tree_already_has() -> None:
    stemmed: RevTree = {"3-c": (None, False), "4-d": ("3-c", False)}
    tree, status = revtree.merge_path(stemmed, ["5-e", "4-d", "3-c", "2-b"], False)
    assert status == "new_leaf"
    assert revtree.ancestry(tree, "5-e") == ["5-e", "4-d", "3-c", "2-b"]


def test_merge_joins_a_piece_that_arrived_with_a_short_history_to_its_ancestor() -> None:
    # 4-d arrived with history back to 3-c only; 2-b is its parent's parent, not a conflict.
    tree: RevTree = {
        "1-a": (None, False),
        "2-b": ("1-a", False),
        "3-c": (None, False),
        "4-d": ("3-c", False),
    }
    assert set(revtree.conflicts(tree)) == {"2-b"}
    tree, _ = revtree.merge_path(tree, ["5-e", "4-d", "3-c", "2-b"], False)
    assert revtree.leaves(tree) == ["5-e"]
    assert revtree.conflicts(tree) == []


def test_a_rev_known_only_as_an_ancestor_takes_the_deleted_flag_its_own_path_brings() -> None:
    # 2-b was a tombstone that 3-c later resurrected; the tree first heard of it via 3-c.
    tree = tree_from_paths(["3-c", "2-b", "1-a"])
    tree, status = revtree.merge_path(tree, ["2-b", "1-a"], True)
    assert status == "internal_node"
    assert revtree.is_deleted(tree, "2-b")
    assert tree == tree_from_paths(
        ["2-b", "1-a"], ["3-c", "2-b", "1-a"], deleted=frozenset({"2-b"})
    )


def test_a_known_leaf_keeps_its_deleted_flag() -> None:
    tree, status = revtree.merge_path(LINEAR, ["3-c", "2-b"], True)
    assert status == "internal_node"
    assert not revtree.is_deleted(tree, "3-c")


# --- merge_trees -----------------------------------------------------------------------------


def test_merge_trees_is_the_union_of_both_trees() -> None:
    other = tree_from_paths(["3-x", "2-b", "1-a"], deleted=frozenset({"3-x"}))
    merged = revtree.merge_trees(LINEAR, other)
    assert merged == {**LINEAR, "3-x": ("2-b", True)}
    assert revtree.merge_trees(other, LINEAR) == merged


def test_merge_trees_extends_a_stemmed_root_from_either_side() -> None:
    stemmed: RevTree = {"2-b": (None, False), "3-c": ("2-b", False)}
    assert revtree.merge_trees(stemmed, LINEAR) == LINEAR
    assert revtree.merge_trees(LINEAR, stemmed) == LINEAR


# --- stem ------------------------------------------------------------------------------------


def test_stemming_a_linear_history_keeps_the_newest_limit_revs() -> None:
    tree, dropped = revtree.stem(LINEAR, 2)
    assert tree == {"2-b": (None, False), "3-c": ("2-b", False)}
    assert dropped == ["1-a"]


def test_stemming_keeps_each_leaf_and_its_limit_minus_one_nearest_ancestors() -> None:
    tree, dropped = revtree.stem(BRANCHED, 2)
    assert tree == {
        "2-b": (None, False),
        "3-c": ("2-b", False),
        "2-x": (None, False),  # kept for 3-w, so 3-y keeps its parent
        "3-y": ("2-x", False),
        "4-z": ("3-y", True),
        "3-w": ("2-x", False),
    }
    assert dropped == ["1-a"]


def test_stemming_within_the_limit_changes_nothing() -> None:
    assert revtree.stem(BRANCHED, 4) == (BRANCHED, [])
    assert revtree.stem(BRANCHED, 1000) == (BRANCHED, [])


def test_stemming_to_one_keeps_only_the_leaves() -> None:
    tree, dropped = revtree.stem(BRANCHED, 1)
    assert tree == {"3-c": (None, False), "4-z": (None, True), "3-w": (None, False)}
    assert set(dropped) == {"1-a", "2-b", "2-x", "3-y"}


def test_stemming_keeps_an_ancestor_a_short_branch_needs_attached_to_the_long_branch() -> None:
    # As couch_key_tree:stem does: 2-b is within the limit of 3-c, so it stays, and 3-d keeps
    # its parent; the branch to 5-f stays 5 long. (PouchDB cuts 3-d loose into a tree of its
    # own instead; either way the same revs and the same leaves survive.)
    tree = {**LINEAR, "3-d": ("2-b", False), "4-e": ("3-d", False), "5-f": ("4-e", False)}
    stemmed, dropped = revtree.stem(tree, 3)
    assert (stemmed, dropped) == (tree, [])
    stemmed, dropped = revtree.stem(tree, 2)
    assert dropped == ["1-a", "3-d"]
    assert revtree.ancestry(stemmed, "5-f") == ["5-f", "4-e"]
    assert revtree.ancestry(stemmed, "3-c") == ["3-c", "2-b"]


# --- missing_revs (revs_diff) ----------------------------------------------------------------


def test_missing_revs_of_an_unknown_document_are_all_the_revs_without_ancestors() -> None:
    assert revtree.missing_revs(None, ["2-b", "1-a", "2-b"]) == (["2-b", "1-a"], [])


def test_missing_revs_ignores_revs_the_tree_has_leaf_or_inner() -> None:
    assert revtree.missing_revs(BRANCHED, ["1-a", "3-c", "4-z"]) == ([], [])


def test_missing_revs_keeps_the_request_order_without_repeats() -> None:
    missing, _ = revtree.missing_revs(LINEAR, ["5-e", "2-b", "4-d", "5-e"])
    assert missing == ["5-e", "4-d"]


def test_possible_ancestors_are_the_leaves_below_the_highest_missing_generation() -> None:
    # As CouchDB's revs_diff: a leaf qualifies when its generation is lower than that of any
    # missing rev (a tombstone too, like 4-z below); inner revs never do.
    missing, ancestors = revtree.missing_revs(BRANCHED, ["4-q", "2-b"])
    assert missing == ["4-q"]
    assert ancestors == ["3-w", "3-c"]
    _, ancestors = revtree.missing_revs(BRANCHED, ["5-q"])
    assert ancestors == ["4-z", "3-w", "3-c"]


def test_a_leaf_of_the_same_generation_is_not_a_possible_ancestor() -> None:
    assert revtree.missing_revs(BRANCHED, ["3-q"]) == (["3-q"], [])
    assert revtree.missing_revs(BRANCHED, ["1-q"]) == (["1-q"], [])


# --- latest_leaves ---------------------------------------------------------------------------


def test_latest_leaves_of_a_leaf_is_the_leaf() -> None:
    assert revtree.latest_leaves(BRANCHED, "3-c") == ["3-c"]


def test_latest_leaves_of_an_inner_rev_are_the_leaves_descending_from_it() -> None:
    assert revtree.latest_leaves(BRANCHED, "2-x") == ["4-z", "3-w"]
    assert revtree.latest_leaves(BRANCHED, "1-a") == ["4-z", "3-w", "3-c"]


# --- properties over random histories --------------------------------------------------------

Path = tuple[list[str], bool]  # newest rev first, and whether that rev is a deletion


@st.composite
def histories(draw: st.DrawFn) -> tuple[RevTree, list[Path]]:
    """A document's true history, and paths of it as replication would deliver them.

    The history has branches, tombstones (some later edited again), now and then a second
    root created independently, and generations past 9. Each path is one rev with some of
    its history: all of it, or only the newest part, as from a peer with a small revs_limit.
    """
    truth: RevTree = {}
    order: list[str] = []
    for _ in range(draw(st.integers(1, 24))):
        choice = draw(st.integers(0, 9))
        if not order or choice == 0:
            parent = None
        elif choice < 6:
            parent = draw(st.sampled_from(sorted(revtree.leaves(truth))))
        else:
            parent = draw(st.sampled_from(order))
        gen = 1 if parent is None else revtree.generation(parent) + 1
        digest = draw(st.text("0123456789abcdef", min_size=1, max_size=2))
        while f"{gen}-{digest}" in truth:
            digest += "0"
        rev = f"{gen}-{digest}"
        truth[rev] = (parent, draw(st.integers(0, 3)) == 0)
        order.append(rev)
    picks = draw(
        st.lists(st.tuples(st.sampled_from(order), st.integers(1, 30)), min_size=1, max_size=30)
    )
    paths = [(revtree.ancestry(truth, rev)[:keep], truth[rev][1]) for rev, keep in picks]
    return truth, paths


def merged(paths: list[Path], tree: RevTree | None = None) -> RevTree:
    tree = {} if tree is None else tree
    for path, deleted in paths:
        tree, _ = revtree.merge_path(tree, path, deleted)
    return tree


def union_of(truth: RevTree, paths: list[Path]) -> RevTree:
    """What merging ``paths`` must give: every rev they name, its parent where some path names
    it, and its true deleted flag where some path brings the rev itself (else not deleted)."""
    tree: RevTree = {}
    heads = {path[0] for path, _ in paths}
    for path, _ in paths:
        for i, rev in enumerate(path):
            parent = path[i + 1] if i + 1 < len(path) else None
            tree[rev] = (parent or tree.get(rev, (None, False))[0], False)
    return {rev: (parent, rev in heads and truth[rev][1]) for rev, (parent, _) in tree.items()}


@given(histories(), st.data())
def test_merging_paths_in_any_order_gives_the_same_tree(
    history: tuple[RevTree, list[Path]], data: st.DataObject
) -> None:
    truth, paths = history
    expected = union_of(truth, paths)
    assert merged(paths) == expected
    assert merged(data.draw(st.permutations(paths))) == expected


@given(histories())
def test_merging_the_same_paths_twice_changes_nothing(
    history: tuple[RevTree, list[Path]],
) -> None:
    _, paths = history
    tree = merged(paths)
    for path, deleted in paths:
        again, status = revtree.merge_path(tree, path, deleted)
        assert status == "internal_node"
        assert again == tree


@given(histories(), st.integers(0, 30))
def test_merge_trees_of_two_halves_equals_merging_every_path(
    history: tuple[RevTree, list[Path]], cut: int
) -> None:
    _, paths = history
    first, second = merged(paths[:cut]), merged(paths[cut:])
    assert revtree.merge_trees(first, second) == merged(paths)
    assert revtree.merge_trees(second, first) == merged(paths)


@given(histories())
def test_every_parent_in_a_merged_tree_is_itself_in_the_tree(
    history: tuple[RevTree, list[Path]],
) -> None:
    tree = merged(history[1])
    assert all(parent is None or parent in tree for parent, _ in tree.values())
    assert all(
        revtree.generation(rev) == revtree.generation(parent) + 1
        for rev, (parent, _) in tree.items()
        if parent is not None
    )


@given(histories())
def test_the_winner_is_a_leaf_no_other_leaf_beats(history: tuple[RevTree, list[Path]]) -> None:
    tree = merged(history[1])
    win = revtree.winner(tree)
    assert win in revtree.leaves(tree)
    best = (not tree[win][1], *revtree.rev_key(win))
    for leaf in revtree.leaves(tree):
        assert (not tree[leaf][1], *revtree.rev_key(leaf)) <= best


@given(histories(), st.randoms(use_true_random=False))
def test_the_winner_and_conflicts_do_not_depend_on_how_the_tree_is_stored(
    history: tuple[RevTree, list[Path]], rnd: random.Random
) -> None:
    tree = merged(history[1])
    items = list(tree.items())
    rnd.shuffle(items)
    shuffled = dict(items)
    assert revtree.winner(shuffled) == revtree.winner(tree)
    assert revtree.sorted_leaves(shuffled) == revtree.sorted_leaves(tree)
    assert revtree.conflicts(shuffled) == revtree.conflicts(tree)
    assert revtree.deleted_conflicts(shuffled) == revtree.deleted_conflicts(tree)


@given(histories())
def test_winner_conflicts_and_deleted_conflicts_are_exactly_the_leaves(
    history: tuple[RevTree, list[Path]],
) -> None:
    tree = merged(history[1])
    win, live, dead = revtree.winner(tree), revtree.conflicts(tree), revtree.deleted_conflicts(tree)
    assert sorted([win, *live, *dead]) == sorted(revtree.leaves(tree))
    assert not any(tree[rev][1] for rev in live)
    assert all(tree[rev][1] for rev in dead)
    ordered = revtree.sorted_leaves(tree)
    assert ordered[0] == win
    assert live == [rev for rev in ordered if rev in live]
    assert dead == [rev for rev in ordered if rev in dead]


@given(histories(), st.integers(1, 8))
def test_stemming_keeps_every_leaf_with_its_newest_history(
    history: tuple[RevTree, list[Path]], limit: int
) -> None:
    tree = merged(history[1])
    stemmed, dropped = revtree.stem(tree, limit)
    assert sorted(revtree.leaves(stemmed)) == sorted(revtree.leaves(tree))
    for leaf in revtree.leaves(tree):
        assert stemmed[leaf] == (tree[leaf][0] if limit > 1 else None, tree[leaf][1])
        kept = revtree.ancestry(tree, leaf)[:limit]
        assert revtree.ancestry(stemmed, leaf)[: len(kept)] == kept
    assert sorted(dropped) == sorted(set(tree) - set(stemmed))
    assert all(parent is None or parent in stemmed for parent, _ in stemmed.values())


@given(histories(), st.integers(1, 8))
def test_stemming_keeps_no_rev_beyond_the_limit_of_every_leaf(
    history: tuple[RevTree, list[Path]], limit: int
) -> None:
    # A branch can stay longer than the limit only through revs that a shorter branch still
    # needs within its own limit (see the hand-made case above); nothing else survives.
    tree = merged(history[1])
    stemmed, _ = revtree.stem(tree, limit)
    needed = {rev for leaf in revtree.leaves(tree) for rev in revtree.ancestry(tree, leaf)[:limit]}
    assert set(stemmed) == needed
    assert revtree.stem(stemmed, limit) == (stemmed, [])


@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 40))
def test_stemming_an_unbranched_history_leaves_it_at_most_limit_long(
    length: int, limit: int, start: int
) -> None:
    revs = [f"{gen}-h{gen}" for gen in range(start + length - 1, start - 1, -1)]
    tree = merged([(revs, False)])
    stemmed, dropped = revtree.stem(tree, limit)
    assert revtree.longest_branch(stemmed) == min(limit, length)
    assert revtree.ancestry(stemmed, revs[0]) == revs[:limit]
    assert sorted(dropped) == sorted(revs[limit:])


@given(histories())
def test_latest_leaves_are_the_leaves_whose_history_holds_the_rev(
    history: tuple[RevTree, list[Path]],
) -> None:
    tree = merged(history[1])
    for rev in tree:
        below = [leaf for leaf in revtree.leaves(tree) if rev in revtree.ancestry(tree, leaf)]
        assert revtree.latest_leaves(tree, rev) == sorted(below, key=revtree.rev_key, reverse=True)


@settings(max_examples=50)
@given(histories(), st.lists(st.integers(1, 12), min_size=1, max_size=6))
def test_missing_revs_are_the_asked_revs_the_tree_lacks(
    history: tuple[RevTree, list[Path]], gens: list[int]
) -> None:
    truth, paths = history
    tree = merged(paths)
    asked = sorted(truth)[:5] + [f"{gen}-new" for gen in gens]
    missing, ancestors = revtree.missing_revs(tree, asked)
    assert missing == list(dict.fromkeys(rev for rev in asked if rev not in tree))
    top = max(revtree.generation(rev) for rev in missing)
    assert set(ancestors) == {
        leaf for leaf in revtree.leaves(tree) if revtree.generation(leaf) < top
    }
    assert ancestors == sorted(ancestors, key=revtree.rev_key, reverse=True)
