"""The HTTP front of the local server: one port for readiness, room WebSockets and (to come)
REST routes."""

from .front import HttpFront, Request, respond

__all__ = ["HttpFront", "Request", "respond"]
