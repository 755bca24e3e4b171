/**
 * What a run tells the outside while it goes: totals, pages, records, commits, and every counter as
 * it moves (retries, rate-limit waits, warnings, records dropped or invalid). The CLI turns it into
 * progress bars on a terminal or log lines otherwise; a library user can pass their own.
 */
import type { Counter } from "./RunStats.js"

/** Callbacks a run makes as it goes. All are optional and must not throw. */
export interface Reporter {
  readonly sourceStarted?: (source: string) => void
  /** The source's total record count, when its API says. */
  readonly total?: (source: string, records: number) => void
  readonly page?: (source: string) => void
  /** Records read from a source (before transforms). */
  readonly read?: (source: string, records: number) => void
  readonly sourceFinished?: (source: string) => void
  /**
   * A counter of a source moved by `n` (`RunStats`: retries, waits, warnings, dropped, invalid, ...),
   * as it happens: a request retried, a rate-limit wait started, a record dropped.
   */
  readonly counted?: (source: string, counter: Counter, n: number) => void
  /** Every sink committed and the checkpoints were saved. */
  readonly committed?: (records: number) => void
  /** The run is over (the reporter should release the terminal). */
  readonly close?: () => void
}

/** A reporter that reports nothing. */
export const silent: Reporter = {}
