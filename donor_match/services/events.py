"""Domain events for subscriptions: in-process, or across API processes through Redis pub/sub.

Publishing is safe from worker threads. Events are best-effort notifications: the write they
announce has already happened, so a failed publish is logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

import redis

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

    def close(self) -> None: ...


class InMemoryEventBus:
    """Fan-out within one process (a single API process, or tests)."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscriber]] = defaultdict(set)

    def publish(self, topic: str, event: Event) -> None:
        for loop, queue in list(self._subscribers.get(topic, ())):
            with contextlib.suppress(RuntimeError):  # its loop closed as it was unsubscribing
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

    def close(self) -> None:
        pass


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

    Each process holds one pub/sub connection, pattern-subscribed to every topic and read by one
    thread that fans events out to the process's subscribers, however many there are (a
    connection per subscription ran Redis out of clients at about a hundred sockets, cutting
    off the API's own store connections). Every process therefore receives every event and
    keeps those its subscribers want: events are small and few next to requests.
    The embedded FalkorDB server is a Redis server, so it carries the events locally.
    """

    CHANNEL_PREFIX = "donor_match:events:"
    CLIENT_NAME = "donor_match_events"  # in CLIENT LIST, to count this fan-out's connections
    RECONNECT_S = 1.0

    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._local = InMemoryEventBus()
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def publish(self, topic: str, event: Event) -> None:
        try:
            self._publisher.publish(self.CHANNEL_PREFIX + topic, json.dumps(event))
        except redis.RedisError as exc:
            log.warning("event on %s not published: %s", topic, exc)

    async def subscribe(self, topic: str) -> AsyncIterator[Event]:
        self._start()
        if not self._listening.is_set():
            # Events published before the listener has subscribed would be lost: wait (briefly).
            await asyncio.to_thread(self._listening.wait, 5)
        async for event in self._local.subscribe(topic):
            yield event

    def subscriber_count(self) -> int:
        return self._local.subscriber_count()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(5)

    def _start(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="event-fan-out", daemon=True
                )
                self._listener.start()

    def _fan_out(self, message: dict[str, Any]) -> None:
        # Whatever reaches the channel, the thread must survive it: one bad message is dropped.
        try:
            topic = message["channel"].decode().removeprefix(self.CHANNEL_PREFIX)
            event = json.loads(message["data"])
        except (ValueError, AttributeError, KeyError) as exc:
            log.warning("event dropped: not an event (%s)", exc)
            return
        if not isinstance(event, dict):
            log.warning("event on %s dropped: not a JSON object", topic)
            return
        self._local.publish(topic, event)

    def _listen(self) -> None:
        """Read the one pub/sub connection until closed; reconnect after a failure (events sent
        meanwhile are lost: they are notifications, not records)."""
        while not self._stop.is_set():
            client = redis.Redis.from_url(
                self._url, socket_connect_timeout=2, client_name=self.CLIENT_NAME
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self.CHANNEL_PREFIX + "*")
                self._listening.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._fan_out(message)
            except (redis.RedisError, OSError) as exc:
                log.warning("event fan-out lost its Redis connection: %s; reconnecting", exc)
                self._stop.wait(self.RECONNECT_S)
            finally:
                pubsub.close()
                client.close()
