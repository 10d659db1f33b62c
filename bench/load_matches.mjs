// Load generator for bench/api_load.py: `matches(first: 20)` for random donors, with autocannon.
//
//   node bench/load_matches.mjs '{"url": "http://127.0.0.1:8000", "target": "graphql",
//     "donors": 1000000, "connections": 32, "rate": 300, "seconds": 30, "token": "..."}'
//
// target: graphql (POST /graphql) or bare (GET /bare/matches, the floor without GraphQL).
// rate: requests per second over all connections; 0 sends as fast as answers come.
// Prints one JSON line: throughput and latency percentiles over every answer.
// Why autocannon rather than locust: the generator shares the machine's two cores with the API
// and the store, and locust spent ~1.5 ms of CPU a request (~0.3 cores at 200 req/s), Node a
// small fraction of that.
import autocannon from "autocannon";

const config = JSON.parse(process.argv[2]);

const QUERY = `query Matches($d: ID!) { matches(donorId: $d, first: 20) {
  id score probability impact nonprofit { id name }
  reasons { sharedCauses { id name } similarDonors distanceKm } } }`;

function randomDonor() {
  const n = Math.floor(Math.random() * config.donors);
  return `donor-${String(n).padStart(7, "0")}`;
}

let failures = 0;
let example = null;

const request =
  config.target === "bare"
    ? {
        method: "GET",
        setupRequest: (req) => ({ ...req, path: `/bare/matches?donor=${randomDonor()}` }),
      }
    : {
        method: "POST",
        path: "/graphql",
        headers: {
          authorization: `Bearer ${config.token}`,
          "content-type": "application/json",
        },
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({
            query: QUERY,
            variables: { d: randomDonor() },
            operationName: "Matches",
          }),
        }),
      };
request.onResponse = (status, body) => {
  // A substring test: parsing every answer would cost the generator more CPU.
  if (status !== 200 || body.includes('"errors"')) {
    failures += 1;
    example ??= `${status} ${body.slice(0, 200)}`;
  }
};

const latencies = [];
const instance = autocannon({
  url: config.url,
  connections: config.connections,
  duration: config.seconds,
  overallRate: config.rate > 0 ? config.rate : undefined,
  requests: [request],
});
instance.on("response", (_client, _status, _bytes, responseTime) => {
  latencies.push(responseTime);
});
instance.on("done", (result) => {
  latencies.sort((a, b) => a - b);
  const at = (q) =>
    latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null;
  const round = (x) => (x === null ? null : Math.round(x * 100) / 100);
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(latencies.length, 1);
  console.log(
    JSON.stringify({
      requests: latencies.length,
      failures: failures + result.errors + result.timeouts,
      throughput_rps: Math.round((latencies.length / result.duration) * 10) / 10,
      p50_ms: round(at(0.5)),
      p95_ms: round(at(0.95)),
      p99_ms: round(at(0.99)),
      mean_ms: round(mean),
      failure_example: example,
    }),
  );
});
