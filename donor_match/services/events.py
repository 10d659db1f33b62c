"""Domain events for subscriptions: in-process, or across API processes through Redis pub/sub.

Publishing is safe from worker threads. Events are best-effort notifications: the write they
announce has already happened, so a failed publish is logged, never raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

import redis
import redis.asyncio

Event = dict[str, Any]
log = logging.getLogger(__name__)
QUEUE_SIZE = 1_000
# Each subscriber's queue is read on its own event loop; publishers may be worker threads.
Subscriber = tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]


class EventBus(Protocol):
    def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, topic: str) -> AsyncIterator[Event]: ...

    def subscriber_count(self) -> int:
        """Subscriptions open in this process."""
        ...


class InMemoryEventBus:
    """Fan-out within one process (a single API process, or tests)."""

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


def matches_topic(donor_id: str) -> str:
    """Something that changes the donor's matches happened (preferences, a gift)."""
    return f"matches:{donor_id}"


def nonprofit_topic(nonprofit_id: str) -> str:
    return f"nonprofit:{nonprofit_id}"


class RedisEventBus:
    """Fan-out across API processes: each event goes through a Redis channel per topic.

    The embedded FalkorDB server is a Redis server, so it carries the events locally.
    """

    CHANNEL_PREFIX = "donor_match:events:"

    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._open = 0

    def publish(self, topic: str, event: Event) -> None:
        try:
            self._publisher.publish(self.CHANNEL_PREFIX + topic, json.dumps(event))
        except redis.RedisError as exc:
            log.warning("event on %s not published: %s", topic, exc)

    async def subscribe(self, topic: str) -> AsyncIterator[Event]:
        client = redis.asyncio.Redis.from_url(self._url, socket_connect_timeout=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.CHANNEL_PREFIX + topic)
            self._open += 1
            try:
                async for message in pubsub.listen():
                    yield json.loads(message["data"])
            finally:
                self._open -= 1
        finally:
            await pubsub.aclose()
            await client.aclose()

    def subscriber_count(self) -> int:
        return self._open
