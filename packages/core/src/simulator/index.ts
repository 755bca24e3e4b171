/**
 * `@effetl/core/simulator`: what every API simulator shares, knowing no vendor. A simulator is a
 * faithful fake of a vendor API on 127.0.0.1 for tests, the demo and benchmarks (see ARCHITECTURE.md):
 * - `Server`: loopback-only HTTP serving of complete replies, request counters and seeded faults;
 * - `Faults`: the fault kinds (5xx, 429, reset, truncate, latency) and the seeded injector;
 * - `Prng`: a seeded PRNG, so catalogues and faults repeat for the same seed;
 * - `FaultProxy`: a proxy in front of a simulator that answers every n-th request badly, the kinds in
 *   turn, so a fault-mix test meets every kind however loaded the machine is;
 * - `Images`: tiny real PNG and JPEG encoders for image bytes;
 * - `Simulator`: the shape a module exports (`export const simulator = Simulator.define(...)`) for
 *   `effetl simulate <path-or-package>` to serve it.
 *
 * @module @effetl/core/simulator
 */
export * as FaultProxy from "./FaultProxy.js"
export * as Faults from "./Faults.js"
export * as Images from "./Images.js"
export { Prng } from "./Prng.js"
export * as Server from "./Server.js"
export * as Simulator from "./Simulator.js"
