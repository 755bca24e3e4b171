/**
 * Text: making text from outside (vendor messages, file names, URLs, config values) safe to print.
 *
 * A vendor's error message, a file name or a header may hold control characters: ANSI escape
 * sequences that clear the screen or recolour it, carriage returns and newlines that forge a log
 * line, bidirectional overrides that reorder what is shown. {@link escapeControl} turns every such
 * character into a visible escape (`\x1b`, `\r`, `\u202e`), so the text reads the same everywhere
 * and can never act on a terminal or split a log line. Every error message core builds from outside
 * text goes through it; a logger should pass every line through it too.
 *
 * @module @effetl/core/Text
 */

/** Options of {@link escapeControl}. */
export interface EscapeOptions {
  /**
   * Keep `\n` as a line break (for a multi-line message core built itself, whose lines are each
   * escaped). Default false: a newline is shown as `\n`, so the text stays one line.
   */
  readonly keepNewlines?: boolean
}

/**
 * Control characters and invisible reordering characters: C0 (except none), DEL, C1, the line and
 * paragraph separators, the bidirectional embeddings, overrides and isolates, and the byte order
 * mark / zero-width no-break space.
 */
const control = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g

const named: Readonly<Record<string, string>> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\u001b": "\\x1b"
}

/** Replaces every control character of a text with a visible escape (`\x1b`, `\r`, `\n`, `\u202e`), so it cannot act on a terminal or split a log line. */
export const escapeControl = (text: string, options: EscapeOptions = {}): string =>
  text.replace(control, (c) => {
    if (c === "\n" && options.keepNewlines === true) return c
    const name = named[c]
    if (name !== undefined) return name
    const code = c.charCodeAt(0)
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
  })

const anyControl = new RegExp(control.source)

/** Whether a text holds a character {@link escapeControl} would escape (newlines included). */
export const hasControl = (text: string): boolean => anyControl.test(text)

/** A file name or path as it may appear in a message: control characters escaped (never trusted to print as is). */
export const printablePath = (file: string): string => escapeControl(file)
