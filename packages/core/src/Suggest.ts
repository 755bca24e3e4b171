/**
 * "Did you mean ...?": the known name closest to a misspelt one, by edit distance (letters left out,
 * added, changed or swapped; case counts as half a change), else the only name that contains it,
 * for unknown options and plugin names.
 */

/** The candidate closest to `word`, if one is near enough to be what was meant (undefined otherwise). */
export const closest = (word: string, candidates: Iterable<string>): string | undefined => {
  const names = [...candidates]
  let best: { name: string; d: number } | undefined
  for (const name of names) {
    if (name === word) continue
    const d = distance(word, name)
    if (d <= Math.max(1, Math.floor(Math.max(word.length, name.length) / 3)) && (best === undefined || d < best.d)) best = { name, d }
  }
  if (best !== undefined) return best.name
  // A part of the name (`token` for `accessToken`), when only one name has it.
  const lower = word.toLowerCase()
  const containing = lower.length >= 4 ? names.filter((c) => c !== word && c.toLowerCase().includes(lower)) : []
  return containing.length === 1 ? containing[0] : undefined
}

/** ` (did you mean x?)` for the closest candidate, or "". */
export const didYouMean = (word: string, candidates: Iterable<string>): string => {
  const c = closest(word, candidates)
  return c === undefined ? "" : ` (did you mean ${c}?)`
}

/** The optimal string alignment distance; a change of case only counts 0.5. */
export const distance = (a: string, b: string): number => {
  const x = [...a]
  const y = [...b]
  const d: Array<Array<number>> = Array.from({ length: x.length + 1 }, (_, i) => [i, ...Array<number>(y.length).fill(0)])
  for (let j = 1; j <= y.length; j++) d[0]![j] = j
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : x[i - 1]!.toLowerCase() === y[j - 1]!.toLowerCase() ? 0.5 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[x.length]![y.length]!
}
