"""Locust user for bench/api_load.py: `matches(first: 20)` for random donors.

Configured by bench/api_load.py through the environment:
BENCH_TARGET   graphql (POST /graphql) or bare (GET /bare/matches, the floor without GraphQL)
BENCH_DONORS   how many donors exist (ids donor-0000000 .. as etl.synth_stream writes them)
BENCH_RATE     requests per second per user; 0: as fast as answers come (closed loop)
BENCH_TOKEN    bearer token (an admin's: it may read every donor's matches)
"""

from __future__ import annotations

import json
import os
import random

from locust import constant, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

QUERY = """query Matches($d: ID!) { matches(donorId: $d, first: 20) {
  id score probability impact nonprofit { id name }
  reasons { sharedCauses { id name } similarDonors distanceKm } } }"""

TARGET = os.environ.get("BENCH_TARGET", "graphql")
DONORS = int(os.environ.get("BENCH_DONORS", "1000"))
RATE = float(os.environ.get("BENCH_RATE", "0"))
HEADERS = {
    "Authorization": f"Bearer {os.environ.get('BENCH_TOKEN', '')}",
    "Content-Type": "application/json",
}


class MatchesUser(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    @task
    def matches(self) -> None:
        donor = f"donor-{random.randrange(DONORS):07d}"
        if TARGET == "bare":
            with self.client.get(
                f"/bare/matches?donor={donor}", name="bare", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"status {response.status_code}")
            return
        body = json.dumps({"query": QUERY, "variables": {"d": donor}, "operationName": "Matches"})
        with self.client.post(
            "/graphql", data=body, headers=HEADERS, name="graphql", catch_response=True
        ) as response:
            # A bytes search: parsing every answer would cost the generator more CPU.
            if response.status_code != 200 or b'"errors"' in (response.content or b""):
                response.failure((response.content or b"")[:200].decode(errors="replace"))
