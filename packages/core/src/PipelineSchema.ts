/**
 * The JSON Schema of pipeline files, for editors (yaml-language-server) and validators (Ajv, strict,
 * draft 2019-09). Built from the file's own Effect Schema and every plugin's config schema, then made
 * fit for what those clients do with it:
 * - one schema per option, with its description beside its type (no `$ref` but to a recursive type
 *   in the root's `$defs`, no one-item `allOf`: yaml-language-server's hover shows the first description it meets, which
 *   was the referenced type's "an integer");
 * - no `$id` (Effect names every `Unknown` `/schemas/unknown`, which Ajv refuses as duplicates) and
 *   no `format` (Ajv strict refuses a format it has not been given);
 * - `${VAR}` and `${VAR:-default}` strings accepted wherever a typed value is (integers, enums,
 *   patterned strings, URLs), as the file is checked before its variables are interpolated;
 * - `use:` names a built-in of the section, an outside plugin given to the schema, or a module path
 *   or package name that is not one typo away from a built-in (so `use: chanel` is flagged).
 */
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"

/** A JSON Schema node, as plain JSON. */
export type Json = { [key: string]: unknown }

/** What the schema needs of a plugin. */
export interface PluginInfo {
  readonly name: string
  readonly description: string
  readonly config: Schema.Schema<any, any>
}

/** A plugin section of the file, with the plugins it offers. */
export interface Section {
  /** The `use:` names, with the plugin each stands for (a built-in's name, or an outside plugin's `use:` as written). */
  readonly plugins: ReadonlyArray<{ readonly use: string; readonly plugin: PluginInfo }>
  /** Every built-in name of any kind: none of them, nor a name one typo away, is taken for an outside plugin. */
  readonly reserved: ReadonlyArray<string>
  /** What an outside plugin of this section is, for the description of its alternative. */
  readonly outside: string
}

const target = "jsonSchema2019-09" as const

/** A `${VAR}` or `${VAR:-default}` anywhere in a string (what interpolation replaces). */
export const envPattern = "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}"

/** The alternative that accepts an interpolated value in place of a typed one. */
const envAlternative: Json = { type: "string", title: "${VAR} (interpolated)", pattern: envPattern }

/**
 * The JSON Schema of an Effect Schema, tidied for editors and strict validators (see the module doc).
 * A recursive type stays a reference, to a definition added to `defs` under a name of its own: the
 * caller puts `defs` under the document's root `$defs`.
 */
export const of = (schema: Schema.Schema<any, any>, defs: Record<string, Json>): Json => {
  const made = JSONSchema.make(schema, { target }) as unknown as Json
  const { $defs: _, $schema: __, ...root } = made
  const found: Defs = { schemas: (made.$defs ?? {}) as Record<string, Json>, names: new Map(), taken: defs }
  const out = withEnv(tidy(root, found, []))
  for (let done = 0; done < found.names.size; done++) {
    const [name, unique] = [...found.names][done]!
    defs[unique] = withEnv(tidy(found.schemas[name], found, [name]))
  }
  return out
}

/** The `$defs` of a generated schema, the names given to its recursive ones, and the names taken in the document. */
interface Defs {
  readonly schemas: Record<string, Json>
  readonly names: Map<string, string>
  readonly taken: Record<string, Json>
}

/** The alternatives of one plugin section: each plugin with its options, then any outside plugin (see `of` for `defs`). */
export const pluginRef = (section: Section, defs: Record<string, Json>): Json => ({
  anyOf: [
    ...section.plugins.map(({ plugin, use }) => ({
      type: "object",
      title: use,
      description: plugin.description,
      required: ["use"],
      properties: {
        use: { type: "string", enum: [use], description: plugin.description },
        with: { ...withOptions(plugin, defs), description: `The options of ${use} (see \`effetl plugins ${use}\`).` }
      },
      additionalProperties: false
    })),
    outsideRef(section)
  ]
})

/** The schema of a plugin's `with:`: its config, an object with no other keys when it takes no options. */
const withOptions = (plugin: PluginInfo, defs: Record<string, Json>): Json => {
  const schema = of(plugin.config, defs)
  if (schema.anyOf !== undefined && Array.isArray(schema.anyOf) && schema.anyOf.every((a) => (a as Json).type === "object" || (a as Json).type === "array")) {
    // Effect writes `Schema.Struct({})` as "any object or array"; such a plugin takes no options.
    return { type: "object", properties: {}, additionalProperties: false }
  }
  return schema
}

/** The alternative for a plugin the schema does not know: a module path or a package name. */
const outsideRef = (section: Section): Json => {
  const known = [...new Set([...section.reserved, ...section.plugins.map((p) => p.use)])]
  return {
    type: "object",
    title: "outside plugin",
    description: section.outside,
    required: ["use"],
    properties: {
      use: {
        type: "string",
        description:
          "A relative module path (./my-plugin.js) or an npm package whose default export is a plugin. A name one typo away from a built-in is taken for a typo; " +
          "run `effetl schema --for <pipeline.yaml>` to include the file's own plugins with their options.",
        not: { enum: known },
        pattern: `^(?!(?:${nearNames(known)})$)(?:\\.{1,2}/.+|/.+|[A-Za-z]:[\\\\/].+|(?:@[A-Za-z0-9][\\w.-]*/)?[A-Za-z0-9][\\w.-]*(?:/[\\w./-]+)?)$`
      },
      with: { type: "object", description: "The plugin's options (see its README or `effetl plugins <name>`)." }
    },
    additionalProperties: false
  }
}

/**
 * A regular expression (alternatives, no anchors) matching every string one edit from a name
 * (a letter left out, added, changed, or two swapped), the names themselves included.
 */
export const nearNames = (names: ReadonlyArray<string>): string => {
  const esc = (chars: ReadonlyArray<string>) => chars.join("").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
  const out = new Set<string>()
  for (const name of names) {
    const c = [...name]
    for (let i = 0; i <= c.length; i++) {
      out.add(`${esc(c.slice(0, i))}.${esc(c.slice(i))}`)
      if (i < c.length) {
        out.add(`${esc(c.slice(0, i))}${esc(c.slice(i + 1))}`)
        out.add(`${esc(c.slice(0, i))}.${esc(c.slice(i + 1))}`)
      }
      if (i < c.length - 1) out.add(esc([...c.slice(0, i), c[i + 1]!, c[i]!, ...c.slice(i + 2)]))
    }
  }
  return [...out].filter((a) => a.length > 0).join("|")
}

/** Keys that only document a schema; an option's own win over those of the type it refers to. */
const annotations = new Set(["description", "title", "default", "examples"])

/**
 * Inlines `$ref`s (a recursive one stays a `$ref`, whose target is then kept under `$defs`), merges
 * one-item `allOf`s into their parent, and drops `$id`, `format` and Effect's generated titles.
 */
const tidy = (node: unknown, defs: Defs, stack: ReadonlyArray<string>): Json => {
  if (typeof node !== "object" || node === null || Array.isArray(node)) return node as Json
  let out: Json = {}
  for (const [key, value] of Object.entries(node as Json)) {
    if (key === "$id" || key === "format" || key === "title") continue
    if (key === "properties" || key === "$defs") {
      out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, tidy(v, defs, stack)]))
    } else if (key === "anyOf" || key === "allOf" || key === "oneOf") {
      out[key] = (value as Array<unknown>).map((v) => tidy(v, defs, stack))
    } else if (key === "items" || key === "additionalProperties" || key === "not" || key === "propertyNames") {
      out[key] = typeof value === "object" && value !== null ? tidy(value, defs, stack) : value
    } else out[key] = value
  }
  if (typeof out.$ref === "string" && out.$ref.startsWith("#/$defs/")) {
    const name = decodeURIComponent(out.$ref.slice("#/$defs/".length))
    const def = defs.schemas[name]
    if (def !== undefined && !stack.includes(name)) {
      const { $ref: _, ...own } = out
      out = merge(tidy(def, defs, [...stack, name]), own) ?? { allOf: [tidy(def, defs, [...stack, name])], ...own }
    } else if (def !== undefined) {
      if (!defs.names.has(name)) {
        const base = name.replace(/[^A-Za-z0-9_.-]/g, "_")
        let unique = base
        for (let i = 2; unique in defs.taken || [...defs.names.values()].includes(unique); i++) unique = `${base}_${i}`
        defs.names.set(name, unique)
        defs.taken[unique] = {}
      }
      out.$ref = `#/$defs/${defs.names.get(name)}`
    }
  }
  const allOf = out.allOf
  if (Array.isArray(allOf) && allOf.length === 1) {
    const { allOf: _, ...own } = out
    const merged = merge(allOf[0] as Json, own)
    if (merged !== undefined) out = merged
  }
  // `Schema.Unknown` ({} once its $id and title are gone) keeps only its documentation.
  return out
}

/** `own` laid over `base` when they constrain different keys (documentation keys: `own` wins); undefined on a conflict. */
const merge = (base: Json, own: Json): Json | undefined => {
  for (const key of Object.keys(own)) {
    if (key in base && !annotations.has(key) && JSON.stringify(base[key]) !== JSON.stringify(own[key])) return undefined
  }
  const out: Json = { ...base, ...own }
  // The referenced type's description ("an integer") never stands in for the option's.
  if (own.description === undefined && base.description !== undefined && /^an? [a-z]/.test(String(base.description))) {
    delete out.description
  }
  return out
}

/** Keys that constrain a scalar: a value with any of them may be written as `${VAR}` instead. */
const scalarKeys = ["enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]

/** Accepts `${VAR}` wherever a scalar is typed or constrained (see `envPattern`). */
const withEnv = (node: Json): Json => {
  if (typeof node !== "object" || node === null || Array.isArray(node)) return node
  const out: Json = { ...node }
  if (out.properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(out.properties as Json).map(([k, v]) => [k, withEnv(v as Json)]))
  }
  for (const key of ["items", "additionalProperties"] as const) {
    if (typeof out[key] === "object" && out[key] !== null) out[key] = withEnv(out[key] as Json)
  }
  if (Array.isArray(out.anyOf)) {
    const alternatives = (out.anyOf as Array<Json>).map((a) => withoutEnvWrap(withEnv(a)))
    out.anyOf = alternatives.some(acceptsEnv) ? alternatives : [...alternatives, envAlternative]
    return out
  }
  if (!isTypedScalar(out)) return out
  const docs: Json = {}
  const check: Json = {}
  for (const [k, v] of Object.entries(out)) (annotations.has(k) ? docs : check)[k] = v
  return { ...docs, anyOf: [check, envAlternative] }
}

/** An alternative made env-aware on its own is unwrapped: the union it sits in gets one `${VAR}` alternative. */
const withoutEnvWrap = (node: Json): Json => {
  const anyOf = node.anyOf
  if (!Array.isArray(anyOf) || anyOf.length !== 2 || anyOf[1] !== envAlternative) return node
  const { anyOf: _, ...docs } = node
  return { ...(anyOf[0] as Json), ...docs }
}

const isTypedScalar = (node: Json): boolean => {
  const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type]
  if (types.some((t) => t === "integer" || t === "number" || t === "boolean")) return true
  return scalarKeys.some((k) => k in node)
}

/** Whether a schema takes any string (so a `${VAR}` string too). */
const acceptsEnv = (node: Json): boolean =>
  node === envAlternative || (node.type === "string" && !scalarKeys.some((k) => k in node)) || Object.keys(node).every((k) => annotations.has(k))
