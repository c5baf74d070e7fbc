"""Project storage (REST `upload`/`download`) and a room's `storage.download_url` with the
official client. Besides the `_official` environment: PROJECT_ID (the project whose storage is
used) and OTHER_API_KEY (a key of another project). Observations:

- round trip of binary data (every byte value, over 256 KiB), an upload that replaces a file;
- the errors of a missing file, traversal and absolute paths, an unknown project, another
  project's key (class and message);
- `download_url` of a room file, as the official RoomClient reads the answer.
"""

from __future__ import annotations

import hashlib
import os

from _official import connect, expect_error, observed, run, timed

from meshagent.api import Meshagent


async def main() -> dict:
    base, key, project = os.environ["MESHAGENT_API_URL"], os.environ["MESHAGENT_API_KEY"], os.environ["PROJECT_ID"]
    data = bytes(range(256)) * 1100 + b"\x00\r\n\xff"
    async with Meshagent(base_url=base, token=key) as api:
        await timed("upload", api.upload(project_id=project, path="bin/data.bin", data=data))
        got = await timed("download", api.download(project_id=project, path="bin/data.bin"))
        observed["round_trip"] = got == data
        observed["sha256"] = hashlib.sha256(got).hexdigest()
        await timed("upload again", api.upload(project_id=project, path="bin/data.bin", data=b"replaced"))
        observed["replaced"] = (await timed("download again", api.download(project_id=project, path="bin/data.bin"))).decode()
        await timed("upload empty", api.upload(project_id=project, path="empty", data=b""))
        observed["empty"] = (await timed("download empty", api.download(project_id=project, path="empty"))).decode()
        observed["errors"] = {
            "missing": await expect_error("missing", api.download(project_id=project, path="nope.bin")),
            "traversal_download": await expect_error("traversal", api.download(project_id=project, path="a/../../x")),
            "traversal_upload": await expect_error("traversal up", api.upload(project_id=project, path="../x", data=b"x")),
            "absolute": await expect_error("absolute", api.download(project_id=project, path="/etc/passwd")),
            "unknown_project": await expect_error("unknown project", api.upload(project_id="nope", path="x", data=b"x")),
        }
    async with Meshagent(base_url=base, token=os.environ["OTHER_API_KEY"]) as other:
        observed["errors"]["other_project_upload"] = await expect_error(
            "other upload", other.upload(project_id=project, path="x", data=b"x")
        )
        observed["errors"]["other_project_download"] = await expect_error(
            "other download", other.download(project_id=project, path="bin/data.bin")
        )
    async with connect("reader") as room:
        await timed("room upload", room.storage.upload(path="docs/report.txt", data=b"hello, url"))
        observed["download_url"] = await timed("download_url", room.storage.download_url(path="docs/report.txt"))
    return observed


run(main)
