"""How deep a JSON body may nest: the bracket count that spares most bodies the walk."""

from __future__ import annotations

import pytest

from patchrisk.json_values import MAX_NESTING, may_nest_deeper


@pytest.mark.parametrize("padding", [0, 10_000], ids=["small body", "large body"])
@pytest.mark.parametrize("brackets", [MAX_NESTING, MAX_NESTING + 1])
def test_may_nest_deeper_counts_opening_brackets_of_either_kind_whatever_the_body_size(padding, brackets):
    half = brackets // 2
    text = b"[" * half + b"{" * (brackets - half) + b" " * padding + b"}" * (brackets - half) + b"]" * half
    assert may_nest_deeper(text) is (brackets > MAX_NESTING)


def test_may_nest_deeper_ignores_closing_brackets_and_other_bytes():
    text = b'{"instances": [' + b'{"a": 1, "b": "x]}"}, ' * 2_000 + b"]}"
    assert may_nest_deeper(text)  # 2,001 objects: the walk decides
    assert not may_nest_deeper(b"]" * 5_000 + b"}" * 5_000 + b"0" * 5_000)
