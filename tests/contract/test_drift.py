"""The committed contract (`contract/`) must equal what the apps generate."""

from __future__ import annotations

from pathlib import Path

from impl_graphql.sdl import sdl
from impl_rest.openapi import text

CONTRACT = Path(__file__).resolve().parents[2] / "contract"


def test_committed_openapi_is_current() -> None:
    assert (CONTRACT / "openapi.json").read_text() == text(), (
        "contract/openapi.json is stale: run `python -m impl_rest.openapi > contract/openapi.json`"
    )


def test_committed_sdl_is_current() -> None:
    assert (CONTRACT / "schema.graphql").read_text() == sdl(), (
        "contract/schema.graphql is stale: run `python -m impl_graphql.sdl > contract/schema.graphql`"
    )
