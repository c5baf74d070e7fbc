"""The `storage` toolkit contract: the exact shapes the official client validates strictly."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec
import pytest

from meshagent_core.toolkits import storage as contract


def test_outputs_have_exactly_the_documented_keys() -> None:
    assert msgspec.to_builtins(contract.ExistsOutput(exists=True)) == {"exists": True}
    assert msgspec.to_builtins(contract.StatOutput(exists=False)) == {"exists": False}
    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    stat = contract.StatOutput(exists=True, name="a.txt", is_folder=False, size=3, created_at=when, updated_at=when)
    assert msgspec.to_builtins(stat) == {
        "exists": True,
        "name": "a.txt",
        "is_folder": False,
        "size": 3,
        "created_at": "2024-05-01T12:00:00Z",
        "updated_at": "2024-05-01T12:00:00Z",
    }
    folder = contract.StorageEntry(name="docs", is_folder=True)
    assert msgspec.to_builtins(contract.ListOutput(files=[folder])) == {"files": [{"name": "docs", "is_folder": True}]}
    assert msgspec.to_builtins(contract.DownloadUrlOutput(url="http://x")) == {"url": "http://x"}


def test_stream_chunk_headers() -> None:
    assert msgspec.to_builtins(contract.UploadPull()) == {"kind": "pull"}
    assert msgspec.to_builtins(contract.UploadPull(chunk_size=5)) == {"kind": "pull", "chunk_size": 5}
    assert msgspec.to_builtins(contract.DownloadData()) == {"kind": "data"}
    started = contract.DownloadStarted(name="a.txt", mime_type="text/plain", size=11)
    assert msgspec.to_builtins(started) == {"kind": "start", "name": "a.txt", "mime_type": "text/plain", "size": 11}

    # what the official 0.56 client sends
    start = {"kind": "start", "path": "a.txt", "overwrite": False, "name": "a.txt", "mime_type": "text/plain", "size": None}
    assert msgspec.convert(start, contract.UploadStart) == contract.UploadStart(path="a.txt", name="a.txt", mime_type="text/plain")
    assert msgspec.convert({"kind": "start", "path": "a", "chunk_size": 65536}, contract.DownloadStart).chunk_size == 65536
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"kind": "data", "path": "a"}, contract.UploadStart)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"kind": "start", "path": "a", "size": "3"}, contract.UploadStart)


def test_events_are_the_session_messages() -> None:
    assert contract.FILE_UPDATED == "storage.file.updated"
    assert contract.FILE_DELETED == "storage.file.deleted"
    assert contract.FILE_MOVED == "storage.file.moved"
    assert msgspec.to_builtins(contract.FileUpdatedEvent(path="a", participant_id="p")) == {"path": "a", "participant_id": "p"}
    moved = contract.FileMovedEvent(source_path="a", destination_path="b", participant_id="p")
    assert msgspec.to_builtins(moved) == {"source_path": "a", "destination_path": "b", "participant_id": "p"}
