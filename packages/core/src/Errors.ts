/**
 * Typed errors. Every error carries a `message` written for the user: the CLI prints it as it is,
 * never a stack trace. Secrets never appear in any field.
 */
import * as Schema from "effect/Schema"

/** One problem of a configuration: its message (naming the config path, and the line when known), path and line. */
export const ConfigProblem = Schema.Struct({
  message: Schema.String,
  path: Schema.optional(Schema.String),
  line: Schema.optional(Schema.Number)
})
export type ConfigProblem = typeof ConfigProblem.Type

/**
 * Bad pipeline configuration or usage (exit code 2). `path` is the config path, `line` the YAML line.
 * When a file has several problems, `problems` lists each (sorted by line) and `message` is a
 * heading followed by their messages, one a line.
 */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  message: Schema.String,
  path: Schema.optional(Schema.String),
  line: Schema.optional(Schema.Number),
  problems: Schema.optional(Schema.Array(ConfigProblem))
}) {}

/** The API refused the credentials (401/403). Never retried: the run fails at once. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  source: Schema.String,
  status: Schema.Number,
  message: Schema.String,
  requestId: Schema.optional(Schema.String)
}) {}

/** The API said "too many requests" and retries ran out. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  source: Schema.String,
  message: Schema.String,
  retryAfterMillis: Schema.optional(Schema.Number),
  requestId: Schema.optional(Schema.String)
}) {}

/** The API answered with an error of its own (HTTP status and/or vendor code and message). */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  source: Schema.String,
  message: Schema.String,
  status: Schema.optional(Schema.Number),
  code: Schema.optional(Schema.String),
  vendorMessage: Schema.optional(Schema.String),
  requestId: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String)
}) {}

/** A body that did not match the expected shape: where (`path`) and a snippet of what came. */
export class DecodeError extends Schema.TaggedError<DecodeError>()("DecodeError", {
  source: Schema.String,
  message: Schema.String,
  path: Schema.optional(Schema.String),
  snippet: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String)
}) {}

/** The request did not complete: connection refused or reset, timeout, truncated body. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  source: Schema.String,
  message: Schema.String,
  url: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {}

/** Any error the HTTP toolkit fails with. */
export type HttpError = Unauthorized | RateLimited | ApiError | DecodeError | TransportError

/** A sink could not write or commit. */
export class SinkError extends Schema.TaggedError<SinkError>()("SinkError", {
  sink: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * The state store could not be read or written (the run fails: exit 1). `corrupt` marks a store
 * whose content cannot be read as state (truncated, not JSON, wrong shape): it was left as it was,
 * and `effetl state reset` (the store's `reset`) is how to start over.
 */
export class StateError extends Schema.TaggedError<StateError>()("StateError", {
  message: Schema.String,
  path: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect),
  corrupt: Schema.optional(Schema.Boolean)
}) {}

/** A transform failed in a way that means the run cannot be right (not a bad record: those are dead letters). */
export class TransformError extends Schema.TaggedError<TransformError>()("TransformError", {
  transform: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** What a source stream may fail with. */
export type SourceError = HttpError | ConfigError

/** Any error that ends a run. */
export type RunError = SourceError | SinkError | StateError | TransformError
