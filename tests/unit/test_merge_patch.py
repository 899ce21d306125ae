"""RFC 7386 JSON merge patch: the examples of its Appendix A, and that no argument is changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from drkit.domain.merge_patch import merge_patch

# RFC 7386, Appendix A: (original, patch, result)
APPENDIX_A: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "result"), APPENDIX_A)
def test_rfc_7386_appendix_a(original: Any, patch: Any, result: Any) -> None:
    assert merge_patch(original, patch) == result


def test_neither_argument_is_changed_nor_shared() -> None:
    live = {"metadata": {"name": "data", "labels": {"a": "1"}}, "spec": {"replicas": 1, "ports": [80]}}
    patch = {"metadata": {"labels": {"b": "2"}}, "spec": {"replicas": None}}
    before = (copy.deepcopy(live), copy.deepcopy(patch))
    merged = merge_patch(live, patch)
    assert merged == {"metadata": {"name": "data", "labels": {"a": "1", "b": "2"}}, "spec": {"ports": [80]}}
    assert (live, patch) == before
    merged["spec"]["ports"].append(443)
    merged["metadata"]["labels"]["c"] = "3"
    assert (live, patch) == before
