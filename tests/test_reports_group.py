"""Long name lists read at a glance: ranges for numbered siblings, braces for shared prefixes."""
from reports import group_names
from reports._group import collapse_numbers


def test_numbered_siblings_become_ranges():
    names = [f"MobilenetV1/Conv2d_{i}_depthwise/BatchNorm/{leaf}" for i in range(1, 14) for leaf in ("beta", "gamma")]
    assert group_names(names) == ["MobilenetV1/Conv2d_{1..13}_depthwise/BatchNorm/{beta, gamma}"]


def test_two_levels_of_numbering_and_gaps():
    names = [f"net/block{b}/unit_{u}/w" for b, n in ((1, 3), (2, 4), (4, 3)) for u in range(1, n + 1)]
    assert group_names(names) == ["net/{block2/unit_{1..4}/w, block{1,4}/unit_{1..3}/w}"]


def test_nothing_lost():
    names = ["a/x1", "a/x2", "a/x3", "a/y", "b", "c/7"]
    assert collapse_numbers(names) == ["a/x{1..3}", "a/y", "b", "c/7"]
    assert group_names(names, max_items=2) == ["a/{x{1..3}, y}", "b", "... and 1 more groups"]
