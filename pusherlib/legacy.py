"""The seeds' shape: ``pusher["channel"].trigger(...)`` returns a :class:`TriggerResult` with
``status_code`` instead of raising on an error status (bad input and no connection still raise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import PusherHTTPError
from .transports.base import Response

if TYPE_CHECKING:
    from .client import Pusher


@dataclass(frozen=True)
class TriggerResult:
    """What the old ``Channel.trigger`` returned: a status and the parsed body."""

    status_code: int
    content: Any

    @property
    def ok(self) -> bool:
        """Whether Pusher accepted the event (a 2xx status)."""
        return 200 <= self.status_code <= 299


class LegacyChannel:
    """``pusher[name]``: a channel bound to a client."""

    def __init__(self, pusher: Pusher, name: str):
        self.pusher = pusher
        self.name = name

    def trigger(self, event: str, data: Any = None, socket_id: str | None = None) -> TriggerResult:
        """Trigger ``event``; HTTP errors come back as the result's ``status_code``."""
        request = self.pusher.requests.trigger(self.name, event, data, socket_id)
        return self.pusher.send_request(request, self._result)

    def trigger_async(self, event: str, data: Any = None, socket_id: str | None = None) -> Any:
        """The old NDB channel's shape: a future (``get_result()``) of the same
        :class:`TriggerResult` as :meth:`trigger` (see ``Pusher.trigger_async``)."""
        request = self.pusher.requests.trigger(self.name, event, data, socket_id)
        return self.pusher.send_request_async(request, self._result)

    def _result(self, response: Response) -> TriggerResult:
        try:
            return TriggerResult(response.status, self.pusher.read_trigger(response))
        except PusherHTTPError as exc:
            if exc.status is None:
                raise
            return TriggerResult(exc.status, exc.body)

    def authenticate(self, socket_id: str, custom_data: Any = None) -> dict[str, str]:
        """The auth answer for this private or presence channel."""
        return self.pusher.authenticate(self.name, socket_id, custom_data)
