"""Where the server's project and API key come from (load_credentials)."""

from __future__ import annotations

import stat
from pathlib import Path

from meshagent_core.tokens import parse_api_key
from meshagent_trio.server import load_credentials

KEY = "ma-D4.tW9nLRp.hZXCGdyiVDg-fJ5meXQlQN6US.B_wfkK5w-s3cr3t-with-dashes-0123456789abcdefABCDEF"


def test_api_key_from_the_environment(tmp_path: Path) -> None:
    credentials, created = load_credentials(tmp_path, {"MESHAGENT_API_KEY": KEY})
    assert not created and credentials.api_key == KEY
    assert credentials.project_id == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert not (tmp_path / "credentials.json").exists()


def test_project_key_id_and_secret_from_the_environment(tmp_path: Path) -> None:
    environment = {"MESHAGENT_PROJECT_ID": "p-1", "MESHAGENT_KEY_ID": "k-1", "MESHAGENT_SECRET": "s3cret"}
    credentials, created = load_credentials(tmp_path, environment)
    assert (credentials.project_id, credentials.key_id, credentials.secret, created) == ("p-1", "k-1", "s3cret", False)


def test_partial_environment_falls_back_to_the_data_dir(tmp_path: Path) -> None:
    credentials, created = load_credentials(tmp_path, {"MESHAGENT_PROJECT_ID": "p-1"})
    assert created and credentials.project_id != "p-1"


def test_created_once_private_and_reused(tmp_path: Path) -> None:
    first, created = load_credentials(tmp_path, {})
    assert created
    path = tmp_path / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_credentials(tmp_path, {})
    assert again == first and not created_again
    key = parse_api_key(first.api_key)
    assert (key.id, key.project_id, key.secret) == (first.key_id, first.project_id, first.secret)
