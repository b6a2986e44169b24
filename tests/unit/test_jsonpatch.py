"""RFC 6902 JSON patch (livefire.mesh.jsonpatch): the one implementation the mesh faults and the sandbox API share."""

from __future__ import annotations

from typing import Any

import pytest

from livefire.mesh.jsonpatch import JsonPatchError, escape, json_patch


@pytest.mark.parametrize(
    ("document", "operations", "expected"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
         {"foo": ["bar", "qux", "baz"]}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
         {"baz": "boo", "foo": "bar"}),
        ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
         [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
         {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
         {"foo": ["all", "cows", "eat", "grass"]}),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ({"foo": 1}, [{"op": "copy", "from": "/foo", "path": "/bar"}], {"foo": 1, "bar": 1}),
        ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc"]}], {"foo": ["bar", ["abc"]]}),
        ({"foo": 1}, [{"op": "test", "path": "/foo", "value": 1.0}], {"foo": 1}),
    ],
)
def test_json_patch_follows_rfc_6902(document: Any, operations: Any, expected: Any) -> None:
    assert json_patch(document, operations) == expected


@pytest.mark.parametrize(
    ("document", "operations", "test_failed"),
    [
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], True),
        ({"baz": "qux"}, [{"op": "test", "path": "/missing", "value": "bar"}], True),
        ({"foo": True}, [{"op": "test", "path": "/foo", "value": 1}], True),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], False),
        ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}], False),
        ({"foo": ["a"]}, [{"op": "replace", "path": "/foo/1", "value": "b"}], False),
        ({"foo": ["a"]}, [{"op": "add", "path": "/foo/01", "value": "b"}], False),
        ({"foo": {"a": 1}}, [{"op": "move", "from": "/foo", "path": "/foo/b"}], False),
        ({"foo": 1}, [{"op": "frobnicate", "path": "/foo"}], False),
    ],
)
def test_json_patch_refuses_what_rfc_6902_refuses(document: Any, operations: Any, test_failed: bool) -> None:
    with pytest.raises(JsonPatchError) as caught:
        json_patch(document, operations)

    assert caught.value.test_failed is test_failed


def test_a_failed_json_patch_leaves_the_document_untouched() -> None:
    document = {"foo": ["bar"]}

    with pytest.raises(JsonPatchError):
        json_patch(document, [{"op": "add", "path": "/foo/-", "value": 1}, {"op": "remove", "path": "/x"}])

    assert document == {"foo": ["bar"]}


def test_a_pointer_token_with_a_slash_or_a_tilde_is_escaped_so_the_patch_reaches_it() -> None:
    document = {"metadata": {"annotations": {"livefire.dev/drill-id": "old", "a~b": "x"}}}
    operations = [
        {"op": "replace", "path": f"/metadata/annotations/{escape('livefire.dev/drill-id')}", "value": "new"},
        {"op": "remove", "path": f"/metadata/annotations/{escape('a~b')}"},
    ]

    assert json_patch(document, operations) == {"metadata": {"annotations": {"livefire.dev/drill-id": "new"}}}


def test_removing_the_whole_document_is_refused() -> None:
    with pytest.raises(JsonPatchError):
        json_patch({"a": 1}, [{"op": "remove", "path": ""}])
