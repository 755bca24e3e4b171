/**
 * ConfigDocs: checks that a plugin's README documents its config schema, so the README's options
 * table never drifts from the options the plugin really takes.
 */
import * as Schema from "effect/Schema"

/**
 * What the `## <section>` part of a README (up to the next `## ` heading) fails to document about
 * a config schema: a table row starting with `` | `field` `` for every field, showing the schema's
 * default for each field that has a plain one. `minimal` is a valid config (its own fields' values
 * are not defaults). An empty list means the README is complete.
 */
export const readmeGaps = <A extends object, I>(
  readme: string,
  schema: Schema.Schema<A, I> & { readonly fields: Schema.Struct.Fields },
  minimal: Record<string, unknown>,
  section = "Options"
): Array<string> => {
  const start = readme.indexOf(`\n## ${section}\n`)
  if (start < 0) return [`no "## ${section}" section`]
  const end = readme.indexOf("\n## ", start + 1)
  const rows = readme.slice(start, end < 0 ? undefined : end).split("\n").filter((line) => line.startsWith("| `"))
  const defaults = Schema.decodeUnknownSync(schema)(minimal) as Record<string, unknown>
  const gaps: Array<string> = []
  for (const field of Object.keys(schema.fields)) {
    const row = rows.find((line) => line.startsWith(`| \`${field}\``))
    if (row === undefined) {
      gaps.push(`${field}: no row`)
      continue
    }
    const value = defaults[field]
    if (field in minimal || value === undefined || typeof value === "object") continue
    if (!row.includes(`\`${JSON.stringify(value)}\``)) gaps.push(`${field}: the row does not show the default ${JSON.stringify(value)}`)
  }
  return gaps
}
