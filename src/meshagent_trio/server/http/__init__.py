"""The HTTP front of the local server: one port for readiness, room WebSockets and REST routes."""

from .front import BodyTooLarge, HttpFront, Request, read_body, respond, respond_json

__all__ = ["BodyTooLarge", "HttpFront", "Request", "read_body", "respond", "respond_json"]
