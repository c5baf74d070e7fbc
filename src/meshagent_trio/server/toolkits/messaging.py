"""The `messaging` toolkit (in progress: tools are added as they are built; a tool not listed here
answers "the messaging toolkit has no tool named …")."""

from __future__ import annotations

from ..toolkit import Toolkit

toolkit = Toolkit("messaging")
