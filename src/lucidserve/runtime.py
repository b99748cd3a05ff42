"""What a serving process holds at run time: the card, the model behind its queue, observability."""

from __future__ import annotations

from dataclasses import dataclass

from lucidserve.api.errors import ApiError
from lucidserve.api.security import ApiKeys
from lucidserve.bundle.card import ModelCard
from lucidserve.bundle.schema import RequestSchemas
from lucidserve.inference.batcher import InferenceQueue
from lucidserve.observability.drift import DriftMonitor
from lucidserve.observability.recording import Observability
from lucidserve.settings import Settings


@dataclass
class Runtime:
    """Shared by the routes of one process. `queue` is set once the model is loaded and warm."""

    settings: Settings
    card: ModelCard
    schemas: RequestSchemas
    observability: Observability
    api_keys: ApiKeys
    queue: InferenceQueue | None = None
    draining: bool = False
    load_failed: bool = False

    @property
    def drift(self) -> DriftMonitor | None:
        """The drift monitor (None when drift or metrics are off)."""
        return self.observability.drift

    @property
    def ready(self) -> bool:
        return self.queue is not None and not self.draining

    @property
    def stalled(self) -> bool:
        """True while the inference thread makes no progress with work waiting."""
        return self.queue is not None and self.queue.stalled

    def require_ready(self) -> InferenceQueue:
        """The inference queue, or a 503 while loading or draining."""
        if self.queue is None or self.draining:
            state = "draining" if self.draining else "loading"
            raise ApiError(
                503,
                "unavailable",
                f"The model is not ready ({state}).",
                headers={"Retry-After": "1"},
            )
        return self.queue

    def set_ready_gauge(self) -> None:
        self.observability.set_ready(self.ready)
