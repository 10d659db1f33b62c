// Keep-alive connections reused just as the server's idle bound closes them
// (bench/keep_alive_race.py runs it). Usage: node keep_alive_race.mjs PORT GAP_MS SECONDS
//
// Each cycle sends a burst over all 32 pooled connections, leaves them idle for GAP_MS, and
// sends the next burst from an event loop kept busy for the last 60 ms of the gap, as a loaded
// client or proxy is: a close that arrives then is seen only after the burst has picked its
// connections.
import http from "node:http";

const [port, gapMs, seconds] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
let answered = 0;
let failed = 0;
const errors = new Set();

const send = () =>
  new Promise((resolve) => {
    const req = http.request({ agent, host: "127.0.0.1", port, path: "/" }, (res) => {
      res.resume();
      res.on("end", () => {
        answered += 1;
        resolve();
      });
    });
    req.on("error", (error) => {
      failed += 1;
      errors.add(String(error));
      resolve();
    });
    req.end();
  });

const burst = () => Promise.all(Array.from({ length: 32 }, send));
const end = Date.now() + seconds * 1000;
await burst();
while (Date.now() < end) {
  await new Promise((resolve) => setTimeout(resolve, gapMs - 30));
  const busyUntil = Date.now() + 60;
  while (Date.now() < busyUntil) {
    // busy: the event loop handles no socket events
  }
  await burst();
}
agent.destroy();
console.log(JSON.stringify({ answered, failed, errors: [...errors] }));
