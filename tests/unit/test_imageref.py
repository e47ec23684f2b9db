"""Image references as people paste them from ACR and AzureML."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.imageref import ImageReference, ImageReferenceError, parse_image_reference

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("myacr.azurecr.io/package@" + DIGEST,
         ImageReference("myacr", "package", None, DIGEST)),
        ("MyAcr1.azurecr.io/models/digits:v1.2",
         ImageReference("myacr1", "models/digits", "v1.2", None)),
        ("  myacr.azurecr.io/a-b_c.d:latest \n",
         ImageReference("myacr", "a-b_c.d", "latest", None)),
        ("myacr.azurecr.io/x:1@" + DIGEST, ImageReference("myacr", "x", "1", DIGEST)),
    ],
)
def test_parses(text: str, expected: ImageReference) -> None:
    assert parse_image_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must not be empty"),
        ("docker.io/library/python:3.11", "registry login server"),
        ("my.azurecr.io/x:1", "5-50 letters and digits"),
        ("myacr.azurecr.io/", "must name a repository"),
        ("myacr.azurecr.io/Upper:1", "repository must be lowercase"),
        ("myacr.azurecr.io/x", "must end with :tag or @sha256:digest"),
        ("myacr.azurecr.io/x@sha256:abc", "64 hex digits"),
        ("myacr.azurecr.io/x:-bad", "repository must be lowercase"),
    ],
)
def test_refuses_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(ImageReferenceError, match=fragment):
        parse_image_reference(text)


component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,8})?", fullmatch=True)


@given(
    registry=st.from_regex(r"[a-z0-9]{5,20}", fullmatch=True),
    repository=st.lists(component, min_size=1, max_size=3).map("/".join),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
    digest=st.one_of(st.none(), st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)),
)
def test_str_round_trips(registry: str, repository: str, tag: str | None,
                         digest: str | None) -> None:
    if tag is None and digest is None:
        tag = "v1"
    ref = ImageReference(registry, repository, tag, digest)
    assert parse_image_reference(str(ref)) == ref
