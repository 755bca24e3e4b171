/**
 * @effetl/core: the framework. The record, the batch stream, plugins, the HTTP toolkit, state,
 * transforms and the runner. It knows no vendor.
 */
export * as Batch from "./Batch.js"
export * as Config from "./Config.js"
export * from "./Errors.js"
export * from "./ProductImage.js"
export * as RunStats from "./RunStats.js"
export * as Sink from "./Sink.js"
export * as Source from "./Source.js"
export * as StateStore from "./StateStore.js"
export * as Transform from "./Transform.js"
export type { PluginServices } from "./Services.js"
