"""Domain events for subscriptions. In-process fan-out; safe to publish from worker threads."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

Event = dict[str, Any]
QUEUE_SIZE = 1_000
# Each subscriber's queue is read on its own event loop; publishers may be worker threads.
Subscriber = tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]


class InMemoryEventBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscriber]] = defaultdict(set)

    def publish(self, topic: str, event: Event) -> None:
        for loop, queue in list(self._subscribers.get(topic, ())):
            loop.call_soon_threadsafe(_offer, queue, event)

    async def subscribe(self, topic: str) -> AsyncIterator[Event]:
        entry = (asyncio.get_running_loop(), asyncio.Queue[Event](maxsize=QUEUE_SIZE))
        self._subscribers[topic].add(entry)
        try:
            while True:
                yield await entry[1].get()
        finally:
            self._subscribers[topic].discard(entry)
            if not self._subscribers[topic]:
                del self._subscribers[topic]

    def subscriber_count(self) -> int:
        return sum(len(entries) for entries in self._subscribers.values())


def _offer(queue: asyncio.Queue[Event], event: Event) -> None:
    # A subscriber too slow to drain 1,000 events loses the newest rather than stalling others.
    if not queue.full():
        queue.put_nowait(event)


def donation_topic(nonprofit_id: str) -> str:
    return f"donation:{nonprofit_id}"
