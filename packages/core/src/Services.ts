/**
 * The services the runner provides to every plugin.
 */
import type { FileSystem } from "@effect/platform/FileSystem"
import type { HttpClient } from "@effect/platform/HttpClient"
import type { Path } from "@effect/platform/Path"
import type { RunStats } from "./RunStats.js"

/** What a plugin's effects may require: an HTTP client, the file system, paths and the run's counters. */
export type PluginServices = HttpClient | FileSystem | Path | RunStats
