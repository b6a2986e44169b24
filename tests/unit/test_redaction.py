"""Redaction: URLs lose their query values, secret values are removed in every form a receiver may echo."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livefire.redaction import REDACTED, Redactor, redact_url, redact_urls_in_text

SECRET = 'Bearer s3cr"et\\tok-8f2a91'


@pytest.mark.parametrize(("url", "shown"), [
    ("https://h.example/p?token=abc&region=us", "https://h.example/p?token=[redacted]&region=[redacted]"),
    ("https://h.example/p?abcdef", "https://h.example/p?[redacted]"),
    ("https://user:pw@h.example/p", "https://[redacted]@h.example/p"),
    ("https://h.example/p#access_token=x", "https://h.example/p#[redacted]"),
    ("http://h.example:8080/healthz", "http://h.example:8080/healthz"),
])
def test_a_url_is_shown_with_its_query_values_credentials_and_fragment_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redacting_a_url_twice_changes_nothing_more() -> None:
    once = redact_url("https://h/p?token=abc")

    assert redact_url(once) == once


def test_urls_inside_a_text_are_redacted_and_the_rest_is_kept() -> None:
    text = "webhook inject POST https://h/start?sig=abc answered 500; see http://x/y?k=v"

    assert redact_urls_in_text(text) == (
        "webhook inject POST https://h/start?sig=[redacted] answered 500; see http://x/y?k=[redacted]"
    )


@pytest.mark.parametrize("form", [
    SECRET,
    json.dumps(SECRET)[1:-1],
    quote(SECRET, safe=""),
    base64.b64encode(SECRET.encode()).decode(),
    base64.urlsafe_b64encode(SECRET.encode()).decode(),
    "s3cr\"et\\tok-8f2a91",  # the credentials without their scheme
], ids=["plain", "json-escaped", "percent-encoded", "base64", "base64-url", "without-scheme"])
def test_every_form_of_a_secret_is_removed(form: str) -> None:
    answer = f'{{"echo": "{form}", "ok": true}}'

    redacted = Redactor([SECRET]).text(answer)

    assert form not in redacted and REDACTED in redacted


@settings(max_examples=300, deadline=None)
@given(secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40),
       before=st.binary(max_size=7), after=st.binary(max_size=7))
def test_a_secret_inside_a_longer_base64_blob_is_removed_at_any_alignment(secret: str, before: bytes,
                                                                          after: bytes) -> None:
    blob = base64.b64encode(before + secret.encode() + after).decode()

    redacted = Redactor([secret]).text(f"Authorization: Basic {blob}")

    assert blob not in redacted


def test_a_basic_credential_is_removed_decoded_and_as_its_password() -> None:
    header = "Basic " + base64.b64encode(b"robot:hunter2-pass").decode()
    redactor = Redactor([header])

    assert redactor.text("user robot:hunter2-pass") == f"user {REDACTED}"
    assert redactor.text("pw=hunter2-pass") == f"pw={REDACTED}"


def test_an_answer_is_redacted_before_it_is_cut_so_no_prefix_of_a_secret_survives() -> None:
    answer = "x" * 1990 + SECRET + "y" * 100

    kept = Redactor([SECRET]).cut(answer, 2000)

    assert kept == "x" * 1990 + REDACTED  # cut first, it would have kept the secret's first 10 characters


def test_a_secret_echoed_as_json_inside_json_is_removed() -> None:
    inner = json.dumps({"authorization": SECRET})
    answer = json.dumps({"echo": inner})

    assert Redactor([SECRET]).text(answer) == json.dumps({"echo": json.dumps({"authorization": REDACTED})})
