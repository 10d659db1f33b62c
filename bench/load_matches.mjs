// Load generator for bench/api_load.py: `matches(first: 20)` for random donors.
//
//   node bench/load_matches.mjs '{"url": "http://127.0.0.1:8000", "target": "graphql",
//     "donors": 1000000, "connections": 32, "rate": 300, "seconds": 30, "token": "..."}'
//
// target: graphql (POST /graphql) or bare (GET /bare/matches, the floor without GraphQL).
// rate: requests per second, evenly spaced and sent whether or not earlier ones were answered
// (an open loop: latency counts from when a request was due, so a slow server cannot hide its
// queue by slowing the generator down); 0: as fast as answers come, over `connections`
// keep-alive connections (autocannon). autocannon's own rate limit is not used: it sends each
// connection's quota for a second in one burst at the start of the second.
// Prints one JSON line: throughput and latency percentiles over every answer.
// Why Node rather than locust: the generator shares the machine's two cores with the API and
// the store, and locust spent ~1.5 ms of CPU a request (~0.3 cores at 200 req/s).
import http from "node:http";
import { performance } from "node:perf_hooks";

import autocannon from "autocannon";

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
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  const round = (x) => (latencies.length ? Math.round(x * 100) / 100 : null);
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(latencies.length, 1);
  console.log(
    JSON.stringify({
      requests: latencies.length,
      failures,
      throughput_rps: Math.round((latencies.length / seconds) * 10) / 10,
      p50_ms: round(at(0.5)),
      p95_ms: round(at(0.95)),
      p99_ms: round(at(0.99)),
      mean_ms: round(mean),
      failure_example: example,
    }),
  );
}

function closedLoop() {
  const request = { ...nextRequest(), setupRequest: (req) => ({ ...req, ...nextRequest() }) };
  request.onResponse = check;
  const instance = autocannon({
    url: config.url,
    connections: config.connections,
    duration: config.seconds,
    requests: [request],
  });
  instance.on("response", (_client, _status, _bytes, responseTime) => {
    latencies.push(responseTime);
  });
  instance.on("done", (result) => {
    failures += result.errors + result.timeouts;
    report(result.duration);
  });
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
    const { method, path, headers, body } = nextRequest();
    pending += 1;
    const done = (status, text) => {
      last = performance.now();
      latencies.push(last - due);
      check(status, text);
      pending -= 1;
      finish();
    };
    const req = http.request(
      { agent, host: url.hostname, port: url.port, method, path, headers },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => done(res.statusCode, Buffer.concat(chunks).toString()));
      },
    );
    req.on("error", (error) => done(0, String(error)));
    req.end(body);
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
