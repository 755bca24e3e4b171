/**
 * `@effetl/core/testing`: helpers for a plugin's own tests, the same for built-ins and third-party
 * plugins. `SourceHarness` runs a source exactly as the runner does and records what came;
 * `ConfigDocs` checks that a README documents every option of a config schema.
 *
 * @module @effetl/core/testing
 */
export * as SourceHarness from "./SourceHarness.js"
export * as ConfigDocs from "./ConfigDocs.js"
