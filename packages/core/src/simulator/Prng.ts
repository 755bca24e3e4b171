/**
 * Prng: a small seeded PRNG (mulberry32), so a simulator's catalogue and faults are the same for the
 * same seed on every run.
 */

/** A small seeded PRNG (mulberry32): the same seed always gives the same catalogue and faults. */
export class Prng {
  private state: number

  constructor(seed: number) {
    this.state = Math.trunc(seed) >>> 0
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<A>(items: ReadonlyArray<A>): A {
    return items[this.int(items.length)]!
  }

  shuffle<A>(items: ReadonlyArray<A>): Array<A> {
    const out = [...items]
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    }
    return out
  }

  hex(length: number): string {
    return Array.from({ length }, () => this.int(16).toString(16)).join("")
  }

  alnum(length: number): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return Array.from({ length }, () => alphabet[this.int(alphabet.length)]).join("")
  }
}
