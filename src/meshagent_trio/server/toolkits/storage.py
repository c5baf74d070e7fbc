"""The `storage` toolkit (in progress: tools are added as they are built; a tool not listed here
answers "the storage toolkit has no tool named …")."""

from __future__ import annotations

from ..toolkit import Toolkit

toolkit = Toolkit("storage")
