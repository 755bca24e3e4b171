/**
 * Simulator: the shape of a simulator `effetl simulate` can serve, built-in or not. A module (a file
 * or a package) offers one by exporting it as `simulator` (or as its default export), made with
 * {@link define}:
 *
 * ```ts
 * export const simulator = Simulator.define({
 *   name: "linkshop",
 *   description: "A Link-header product API",
 *   start: async ({ port, faults }) => {
 *     const served = await Server.serve({ name: "linkshop", port, faults, respond, serverErrors, throttled })
 *     return { url: served.origin, lines: ["  token: t0ken"], close: served.close }
 *   }
 * })
 * ```
 *
 * `effetl simulate ./path/to/module.js` loads a path relative to the working directory;
 * `effetl simulate <package>` loads the package (or, when its main module has none, its
 * `<package>/simulator` export, where the built-in sources keep theirs).
 */
import type { FaultOptions } from "./Faults.js"

/** What `start` is given: where to listen and what faults to inject. */
export interface StartOptions {
  /** The TCP port on 127.0.0.1; 0 picks a free one. */
  readonly port: number
  /** The faults `--faults` / `--fault-rate` asked for; none when undefined. */
  readonly faults?: FaultOptions
}

/** A started simulator. */
export interface Running {
  /** Its base URL, `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Lines printed under `<name> simulator listening on <url>`: credentials, a request to try, a run command. */
  readonly lines?: ReadonlyArray<string>
  /** Stops it (Ctrl-C, SIGTERM). */
  readonly close: () => Promise<void>
}

/** A simulator: a name, one line about it, and how to start it. */
export interface Simulator {
  readonly _tag: "Simulator"
  /** A short name (`linkshop`), shown when it starts. */
  readonly name: string
  /** One line: the API it fakes and what is faithful about it. */
  readonly description: string
  /** Starts it on 127.0.0.1 (e.g. with `Server.serve`). */
  readonly start: (options: StartOptions) => Promise<Running>
}

/** Defines a simulator `effetl simulate` can serve. */
export const define = (simulator: Omit<Simulator, "_tag">): Simulator => ({ _tag: "Simulator", ...simulator })

/** Whether a value is a simulator (made with {@link define}; checked by shape, as a module may bring its own copy of core). */
export const isSimulator = (u: unknown): u is Simulator =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Simulator" &&
  typeof (u as { start?: unknown }).start === "function" && typeof (u as { name?: unknown }).name === "string"
