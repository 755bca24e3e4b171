/**
 * Outputs that would overwrite each other, found from a pipeline's configs before a run touches
 * anything: two sinks on one path, a sink on the state file or on the dead-letter file, an output
 * inside a directory another output owns. Each sink says what it writes with `SinkPlugin.outputs`;
 * the dead-letter file, the JSON state file and the run's spill directory are added here.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigError } from "./Errors.js"
import type { Pipeline } from "./Pipeline.js"
import type { SinkOutput } from "./Sink.js"
import { anyIncremental } from "./Source.js"

/** One file or directory a pipeline writes, with the config option that names it. */
export interface Output extends SinkOutput {
  /** The config path that names it, e.g. `sinks.images_csv.with.path` or `deadLetter.path`. */
  readonly owner: string
  /** Outputs of one group (one sink, the state) never conflict with each other. */
  readonly group: string
}

/** Two outputs that would overwrite each other. */
export interface Conflict {
  readonly a: Output
  readonly b: Output
  /** `same`: one path; `inside`: `a` is inside `b`. */
  readonly how: "same" | "inside"
}

/** Every file and directory the pipeline writes: each sink's `outputs`, the dead-letter file and the state's files. */
export const outputsOf = (pipeline: Pipeline): ReadonlyArray<Output> => {
  const out: Array<Output> = []
  const incremental = anyIncremental(pipeline.sources)
  for (const sink of pipeline.sinks) {
    for (const o of sink.plugin.outputs?.(sink.config, { incremental }) ?? []) {
      out.push({ ...o, path: path.resolve(o.path), owner: `sinks.${sink.name}.with.${o.option}`, group: `sinks.${sink.name}` })
    }
  }
  out.push({ option: "path", path: path.resolve(pipeline.deadLetterPath), kind: "file", owner: "deadLetter.path", group: "deadLetter" })
  const statePath = path.resolve(pipeline.statePath)
  if (pipeline.stateStore === undefined) out.push({ option: "path", path: statePath, kind: "file", owner: "state.path", group: "state" })
  out.push({
    option: "path",
    path: path.join(path.dirname(statePath), "runs"),
    kind: "directory",
    owner: "the run directory beside state.path",
    group: "state"
  })
  return out
}

/** The pairs of outputs that would overwrite each other (symbolic links of existing directories followed). */
export const find = (outputs: ReadonlyArray<Output>): ReadonlyArray<Conflict> => {
  const real = outputs.map((o) => ({ ...o, real: canonical(o.path) }))
  const conflicts: Array<Conflict> = []
  for (let i = 0; i < real.length; i++) {
    for (let j = i + 1; j < real.length; j++) {
      const a = real[i]!
      const b = real[j]!
      if (a.group === b.group) continue
      if (a.real === b.real) {
        if (a.part !== undefined && b.part !== undefined && a.part !== b.part) continue
        conflicts.push({ a: strip(a), b: strip(b), how: "same" })
      } else if (isInside(a.real, b.real)) conflicts.push({ a: strip(a), b: strip(b), how: "inside" })
      else if (isInside(b.real, a.real)) conflicts.push({ a: strip(b), b: strip(a), how: "inside" })
    }
  }
  return conflicts
}

/** Fails with a config error naming both outputs of the first conflict, if any. */
export const check = (pipeline: Pipeline): Effect.Effect<void, ConfigError> =>
  Effect.suspend(() => {
    const [first] = find(outputsOf(pipeline))
    return first === undefined ? Effect.void : Effect.fail(new ConfigError({ message: describe(first), path: first.a.owner }))
  })

/** A conflict in one line: both config options, the path and what to do. */
export const describe = (c: Conflict): string => {
  const what = (o: Output) => `${o.owner} (${shown(o.path)})`
  if (c.how === "same") {
    const part = c.a.part !== undefined && c.a.part === c.b.part ? ` (${c.a.part})` : ""
    return `${c.a.owner} and ${c.b.owner} are the same path${part}, ${shown(c.a.path)}: one would overwrite the other; give each output its own path`
  }
  return c.b.kind === "directory"
    ? `${what(c.a)} is inside the directory of ${what(c.b)}: the two outputs would mix; give each output its own place`
    : `${what(c.a)} is inside ${what(c.b)}, which is a file: give each output its own path`
}

const strip = ({ real: _, ...o }: Output & { real: string }): Output => o

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child)
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel)
}

/** A path with its deepest existing ancestor resolved through symbolic links. */
const canonical = (p: string): string => {
  const rest: Array<string> = []
  let at = p
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(at), ...rest.reverse())
    } catch {
      const parent = path.dirname(at)
      if (parent === at) return p
      rest.push(path.basename(at))
      at = parent
    }
  }
}

/** A path as the user sees it: relative to the working directory when inside it. */
const shown = (p: string): string => {
  const rel = path.relative(process.cwd(), p)
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p
}
