// Load generator for bench/api_load.py: `matches(first: 20)` for random donors.
//
//   node bench/load_matches.mjs '{"url": "http://127.0.0.1:8000", "target": "graphql",
//     "donors": 1000000, "connections": 32, "rate": 300, "seconds": 30, "token": "..."}'
//
// target: graphql (POST /graphql) or bare (GET /bare/matches, the floor without GraphQL).
// rate: requests per second, evenly spaced and sent whether or not earlier ones were answered
// (an open loop: latency counts from when a request was due, so a slow server cannot hide its
// queue by slowing the generator down); 0: as fast as answers come, over `connections`
// keep-alive connections (a closed loop). Plain node:http rather than autocannon: autocannon's
// rate limit sends each connection's quota for a second in one burst at the start of the
// second, and it opens every connection at once (see closedLoop).
// Prints one JSON line: every answer's latency and Server-Timing header, and the failures.
// Why Node rather than locust: the generator shares the machine's two cores with the API and
// the store, and locust spent ~1.5 ms of CPU a request (~0.3 cores at 200 req/s).
import http from "node:http";
import { performance } from "node:perf_hooks";

const config = JSON.parse(process.argv[2]);

const QUERY = `query Matches($d: ID!) { matches(donorId: $d, first: 20) {
  id score probability impact nonprofit { id name }
  reasons { sharedCauses { id name } similarDonors distanceKm } } }`;

function randomDonor() {
  const n = Math.floor(Math.random() * config.donors);
  return `donor-${String(n).padStart(7, "0")}`;
}

function nextRequest() {
  if (config.target === "bare") {
    return { method: "GET", path: `/bare/matches?donor=${randomDonor()}`, headers: {} };
  }
  return {
    method: "POST",
    path: "/graphql",
    headers: { authorization: `Bearer ${config.token}`, "content-type": "application/json" },
    body: JSON.stringify({ query: QUERY, variables: { d: randomDonor() }, operationName: "Matches" }),
  };
}

const latencies = [];
// Per answer, its Server-Timing header (the API's phases, when it sends them) beside its
// latency. The generator only records: bench/api_load.py summarises (percentiles, the slowest
// 1%'s phases), so that slices of one phase run at different times can be pooled.
const timings = [];
let failures = 0;
let example = null;

function check(status, body) {
  // A substring test: parsing every answer would cost the generator more CPU.
  if (status !== 200 || body.includes('"errors"')) {
    failures += 1;
    example ??= `${status} ${body.slice(0, 200)}`;
  }
}

function report(seconds) {
  console.log(
    JSON.stringify({
      seconds,
      failures,
      failure_example: example,
      latencies_ms: latencies.map((x) => Math.round(x * 100) / 100),
      server_timings: timings, // JSON.stringify writes a missing header as null
    }),
  );
}

// One request over a keep-alive connection, resolved with its status and body.
function send(agent, url) {
  const { method, path, headers, body } = nextRequest();
  return new Promise((resolve) => {
    const req = http.request(
      { agent, host: url.hostname, port: url.port, method, path, headers },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () =>
          resolve([res.statusCode, Buffer.concat(chunks).toString(), res.headers["server-timing"]]),
        );
      },
    );
    req.on("error", (error) => resolve([0, String(error)]));
    req.end(body);
  });
}

async function closedLoop() {
  // Each connection sends its next request when the last is answered. Connections open one
  // every RAMP_MS rather than all at once: a burst of connects is accepted by whichever API
  // process wakes first (one took 32 of 32 in a test, leaving the other idle), while staggered
  // ones go to a process free to accept, as behind a load balancer.
  const RAMP_MS = 30;
  const url = new URL(config.url);
  const start = performance.now();
  const end = start + config.seconds * 1000;
  const connection = async (index) => {
    await new Promise((resolve) => setTimeout(resolve, index * RAMP_MS));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (performance.now() < end) {
      const began = performance.now();
      const [status, text, timing] = await send(agent, url);
      latencies.push(performance.now() - began);
      timings.push(timing);
      check(status, text);
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: config.connections }, (_, i) => connection(i)));
  report((performance.now() - start) / 1000);
}

function openLoop() {
  const url = new URL(config.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.connections });
  const interval = 1000 / config.rate;
  const total = Math.round(config.rate * config.seconds);
  const start = performance.now();
  let sent = 0;
  let pending = 0;
  let last = start;
  const finish = () => {
    if (sent === total && pending === 0) {
      agent.destroy();
      report((last - start) / 1000);
    }
  };
  const fire = (due) => {
    pending += 1;
    send(agent, url).then(([status, text, timing]) => {
      last = performance.now();
      latencies.push(last - due);
      timings.push(timing);
      check(status, text);
      pending -= 1;
      finish();
    });
  };
  const tick = () => {
    while (sent < total && start + sent * interval <= performance.now()) {
      fire(start + sent * interval);
      sent += 1;
    }
    if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    else finish();
  };
  tick();
}

if (config.rate > 0) openLoop();
else closedLoop();
