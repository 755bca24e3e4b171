/**
 * Faults: which requests a simulator answers badly, decided by a seeded PRNG so that a failing run
 * is repeatable. The kinds are vendor-neutral; what a 5xx or a 429 looks like is the simulator's
 * (see {@link Server.serve}).
 */
import { Prng } from "./Prng.js"

/**
 * The fault kinds a simulator can inject:
 * - `5xx`, `429`: the simulator's own error answers;
 * - `reset`: the connection dropped with no answer;
 * - `truncate`: the full Content-Length announced, half the body sent, the connection closed;
 * - `latency`: the answer delayed by `latencyMs`;
 * - `stall`: no answer at all (the client's timeout must cut it);
 * - `malformed`: a 2xx whose body is cut in half with a matching Content-Length, so the transport
 *   looks complete and only parsing the body tells (what a broken proxy or a vendor bug sends).
 */
export type FaultKind = "5xx" | "429" | "reset" | "truncate" | "latency" | "stall" | "malformed"

/** Every fault kind. */
export const faultKinds: ReadonlyArray<FaultKind> = ["5xx", "429", "reset", "truncate", "latency", "stall", "malformed"]

/** Which faults to inject, how often, and how (all repeatable from `seed`). */
export interface FaultOptions {
  /** which faults to inject */
  readonly kinds: ReadonlyArray<FaultKind>
  /** probability (0..1) that a request gets a fault; default 0.25 */
  readonly rate?: number
  /** PRNG seed so runs are repeatable; default 1 */
  readonly seed?: number
  /** latency added by the "latency" fault; default 150 ms */
  readonly latencyMs?: number
  /** Retry-After seconds on 429 (for APIs that send one); default 1 */
  readonly retryAfterSeconds?: number
  /** never fault the same URL more than this many times in a row (so a client retrying ≥ this many times always gets through); default 2 */
  readonly maxConsecutive?: number
}

/** One decided fault. `variant` picks one of the simulator's 5xx answers. */
export type Fault =
  | { readonly kind: "5xx"; readonly variant: number }
  | { readonly kind: "429"; readonly retryAfterSeconds: number }
  | { readonly kind: "reset" }
  | { readonly kind: "truncate" }
  | { readonly kind: "latency"; readonly latencyMs: number }
  | { readonly kind: "stall" }
  | { readonly kind: "malformed" }

/** Checks fault options and fills in the defaults; throws a `RangeError` naming a bad value. */
export const normalise = (options: FaultOptions): Required<FaultOptions> => {
  const normalised = {
    kinds: options.kinds,
    rate: options.rate ?? 0.25,
    seed: options.seed ?? 1,
    latencyMs: options.latencyMs ?? 150,
    retryAfterSeconds: options.retryAfterSeconds ?? 1,
    maxConsecutive: options.maxConsecutive ?? 2
  }
  const unknown = normalised.kinds.find((kind) => !faultKinds.includes(kind))
  if (unknown !== undefined) throw new RangeError(`Unknown fault kind "${String(unknown)}"; expected one of ${faultKinds.join(", ")}`)
  if (!(normalised.rate >= 0 && normalised.rate <= 1)) throw new RangeError(`Fault rate must be within 0..1, got ${normalised.rate}`)
  if (!(normalised.latencyMs >= 0)) throw new RangeError(`Fault latencyMs must be >= 0, got ${normalised.latencyMs}`)
  if (!Number.isInteger(normalised.retryAfterSeconds) || normalised.retryAfterSeconds < 0) {
    throw new RangeError(`Fault retryAfterSeconds must be a non-negative integer, got ${normalised.retryAfterSeconds}`)
  }
  if (!Number.isInteger(normalised.maxConsecutive) || normalised.maxConsecutive < 0) {
    throw new RangeError(`Fault maxConsecutive must be a non-negative integer, got ${normalised.maxConsecutive}`)
  }
  return normalised
}

/** Decides, from a seeded PRNG, which requests get a fault, never faulting one URL too often in a row. */
export class FaultInjector {
  private options: Required<FaultOptions> | undefined
  private rng = new Prng(1)
  private readonly streaks = new Map<string, number>()

  /** `serverErrorVariants`: how many different 5xx answers the simulator has. */
  constructor(options: FaultOptions | undefined, private readonly serverErrorVariants = 1) {
    this.reset(options)
  }

  /** Replaces the options (undefined: no faults) and restarts the PRNG from its seed. */
  reset(options: FaultOptions | undefined): void {
    this.options = options === undefined ? undefined : normalise(options)
    this.rng = new Prng(this.options?.seed ?? 1)
    this.streaks.clear()
  }

  /** The fault for this request (keyed by path and query), or undefined to answer normally. */
  next(key: string): Fault | undefined {
    const options = this.options
    if (options === undefined || options.kinds.length === 0) return undefined
    const streak = this.streaks.get(key) ?? 0
    const roll = this.rng.next()
    if (roll >= options.rate || streak >= options.maxConsecutive) {
      this.streaks.delete(key)
      return undefined
    }
    this.streaks.set(key, streak + 1)
    const kind = this.rng.pick(options.kinds)
    switch (kind) {
      case "5xx":
        return { kind, variant: this.rng.int(this.serverErrorVariants) }
      case "429":
        return { kind, retryAfterSeconds: options.retryAfterSeconds }
      case "latency":
        return { kind, latencyMs: options.latencyMs }
      case "reset":
      case "truncate":
      case "stall":
      case "malformed":
        return { kind }
    }
  }
}

/** A reply's body cut in half, announced with a matching Content-Length: what a `malformed` fault sends. */
export const malformedBody = (body: Uint8Array): Uint8Array => body.subarray(0, Math.floor(body.length / 2))
