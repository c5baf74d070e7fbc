"""The local MeshAgent server: rooms over WebSockets and HTTP on one port, on Trio."""

from .app import Server, run_server
from .config import Credentials, ServerConfig, load_credentials
from .process import LocalServerProcess, ServerStartError

__all__ = ["Credentials", "LocalServerProcess", "Server", "ServerConfig", "ServerStartError", "load_credentials", "run_server"]
