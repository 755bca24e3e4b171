/**
 * `@effetl/core/testing`: helpers for a plugin's own tests, the same for built-ins and third-party
 * plugins. `SourceHarness` runs a source exactly as the runner does and records what came;
 * `ConfigDocs` checks that a README documents every option of a config schema; `WireShape`
 * infers a schema from a vendor's example payload, to check a simulator answers in its shape.
 *
 * @module @effetl/core/testing
 */
export * as SourceHarness from "./SourceHarness.js"
export * as ConfigDocs from "./ConfigDocs.js"
export * as WireShape from "./WireShape.js"
