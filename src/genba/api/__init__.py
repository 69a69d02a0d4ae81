"""REST + WebSocket API of a node, with OpenAPI at ``/openapi.json``."""

from genba.api._app import create_app
from genba.api._errors import error_body
from genba.api._serve import bind_socket, serve

__all__ = ["bind_socket", "create_app", "error_body", "serve"]
