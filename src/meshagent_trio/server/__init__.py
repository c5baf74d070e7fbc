"""The local MeshAgent server: rooms over WebSockets and HTTP on one port, on Trio."""

from .app import Credentials, Server, ServerConfig, load_credentials, run_server

__all__ = ["Credentials", "Server", "ServerConfig", "load_credentials", "run_server"]
