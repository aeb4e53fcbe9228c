"""The client's one error class: a stable `code` and a message (the codes are listed in ERRORS.md at the repository root).

Server codes (`SW_ERR_*`) are listed in ERRORS.md at the repository root. Four codes are the
client's own, for failures that never reached the server's protocol:

- `SW_ERR_CONNECT`: the WebSocket could not be opened (refused, HTTP status such as 401, timeout).
- `SW_ERR_CONNECTION_CLOSED`: the socket closed before a reply came (`close_code` is set).
- `SW_ERR_PROTOCOL`: the server sent something this client cannot read.
- `SW_ERR_EPISODE_LOST`: with reconnect on, the connection closed mid-episode and the episode's state
  (on the server) was lost with it; `step()` and `end()` raise it until `reset()` starts a new episode.
"""
from __future__ import annotations

from typing import Optional

CONNECT = "SW_ERR_CONNECT"
CONNECTION_CLOSED = "SW_ERR_CONNECTION_CLOSED"
PROTOCOL = "SW_ERR_PROTOCOL"
EPISODE_LOST = "SW_ERR_EPISODE_LOST"


class StagewardError(Exception):
    """An error reply from the server, or the connection failing under a request."""

    def __init__(self, code: str, message: str, seq: Optional[int] = None, close_code: Optional[int] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.seq = seq
        self.close_code = close_code
