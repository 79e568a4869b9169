"""The sync twin is generated from the async source and must never be stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools import unasync


def test_sync_twin_is_up_to_date() -> None:
    stale = unasync.stale_files()
    assert not stale, "flashcards/_sync is stale: run `python tools/unasync.py`\n" + "".join(stale.values())


def test_editing_one_side_only_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = tmp_path / "_async", tmp_path / "_sync"
    shutil.copytree(unasync.SOURCE, source)
    shutil.copytree(unasync.TARGET, target)
    monkeypatch.setattr(unasync, "SOURCE", source)
    monkeypatch.setattr(unasync, "TARGET", target)
    assert unasync.stale_files() == {}

    service = source / "service.py"
    service.write_text(service.read_text().replace("earliest first", "soonest first"))
    assert target / "service.py" in unasync.stale_files()  # async edited, sync not regenerated

    unasync.main([])
    assert unasync.stale_files() == {}
    sync_service = target / "service.py"
    sync_service.write_text(sync_service.read_text() + "\n# hand edit\n")
    assert target / "service.py" in unasync.stale_files()  # sync edited by hand


def test_transformations_preserve_lines() -> None:
    src = "async def f(conn):\n    async with x() as c:\n        await conn.run_sync(meta.create_all)\n"
    out = unasync.unasync_text(src)
    assert out == "def f(conn):\n    with x() as c:\n        meta.create_all(conn)\n"
    for path in unasync.SOURCE.glob("*.py"):
        if path.name not in unasync.HAND_WRITTEN:
            assert len(unasync.unasync_text(path.read_text()).splitlines()) == len(path.read_text().splitlines())
