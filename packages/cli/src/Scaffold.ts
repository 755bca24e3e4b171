/**
 * `effetl new source|sink <name>`: makes an outside npm package holding a working plugin, from the
 * templates in packages/cli/templates/<kind>/ (real files, readable as code, with placeholders).
 * The package builds (tsc), tests (vitest, against its own simulator for a source) and runs
 * (`effetl run pipeline.yaml`) as generated; its author then replaces the example API or format.
 *
 * Placeholders, replaced in every file: `__package__` (the npm name), `__plugin__` (the plugin's
 * name), `__ident__` / `__Ident__` (its TypeScript names), `__ENV__` (its environment variables'
 * prefix), `__dependencies__` / `__devDependencies__` (package.json). A file named `gitignore`
 * becomes `.gitignore` (npm leaves `.gitignore` files out of a published package).
 */
import { ConfigError } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { builtinModules } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** What `effetl new` can make. */
export const kinds = ["source", "sink"] as const
export type Kind = (typeof kinds)[number]

/**
 * The versions of the tools a generated package builds and tests with (its devDependencies). A test
 * checks that the versions this repository uses satisfy them.
 */
export const toolVersions: Readonly<Record<string, string>> = {
  "@types/node": "^20.19.0",
  typescript: "~5.9.3",
  vitest: "^3.2.4"
}

/** Where the templates are: packages/cli/templates/<kind>/, beside src/ and dist/. */
export const templatesDir = (kind: Kind): string => fileURLToPath(new URL(`../templates/${kind}/`, import.meta.url))

/** Why `name` cannot be an npm package name (the rules `npm init` applies to a new package), or undefined when it can. */
export const packageNameProblem = (name: string): string | undefined => {
  if (name.length === 0) return "it is empty"
  if (name.length > 214) return "it is longer than 214 characters"
  if (name !== name.trim()) return "it has spaces around it"
  if (name !== name.toLowerCase()) return "it has capital letters"
  const m = /^(?:@([^/]+)\/)?([^/]+)$/.exec(name)
  if (m === null) return "it has a '/' outside of a @scope/name"
  const [, scope, bare] = m
  for (const part of [scope, bare]) {
    if (part === undefined) continue
    if (part.startsWith(".") || part.startsWith("_")) return "it starts with '.' or '_'"
    if (!/^[a-z0-9][a-z0-9._~-]*$/.test(part)) return "it has characters other than a-z, 0-9, '-', '.', '_' and '~'"
  }
  if (scope === undefined && (builtinModules.includes(bare!) || ["node_modules", "favicon.ico"].includes(bare!))) {
    return "it is the name of a Node.js core module or a reserved name"
  }
  return undefined
}

/** The names a package's plugin goes by. */
export interface Names {
  /** The npm package name (`@acme/effetl-source-shop`). */
  readonly package: string
  /** The plugin's `name` (`shop`): the package's own name without a scope or an `effetl-source-` style prefix. */
  readonly plugin: string
  /** Its TypeScript name (`shop`, `myShop`). */
  readonly ident: string
  /** Its TypeScript type name (`Shop`, `MyShop`). */
  readonly Ident: string
  /** The prefix of its environment variables (`SHOP`, `MY_SHOP`). */
  readonly env: string
}

/** JavaScript's reserved words: never a plugin's TypeScript name. */
const reserved = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false finally for function if " +
    "implements import in instanceof interface let new null package private protected public return static super switch this " +
    "throw true try typeof var void while with yield await async of type").split(" ")
)

/** Whether a word is a name in the templates of `kind` (a plugin's TypeScript name must not shadow or clash with one). */
const templateWords = (kind: Kind): ((word: string) => boolean) => {
  const from = templatesDir(kind)
  const words = new Set<string>()
  for (const f of fs.readdirSync(from, { recursive: true, encoding: "utf8" }) as Array<string>) {
    if (!fs.statSync(path.join(from, f)).isFile()) continue
    for (const w of fs.readFileSync(path.join(from, f), "utf8").match(/[A-Za-z_$][\w$]*/g) ?? []) words.add(w)
  }
  return (word) => words.has(word)
}

/**
 * The names of a `kind` plugin in a package called `name` (a valid package name). Its TypeScript name
 * is the plugin's name in camelCase, with the kind after it when that would be a reserved word or a
 * name the templates use (`line` → `lineSink`).
 */
export const namesOf = (kind: Kind, name: string, taken: (word: string) => boolean = templateWords(kind)): Names => {
  const bare = name.replace(/^@[^/]+\//, "")
  const plugin = bare.replace(new RegExp(`^(?:effetl-)?${kind}-(?=.)`), "")
  const words = plugin.split(/[^a-z0-9]+/).filter((w) => w.length > 0)
  const camel = words.map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1))).join("")
  const Kind = kind[0]!.toUpperCase() + kind.slice(1)
  const ident = !/^[a-z]/.test(camel)
    ? `${kind}${camel[0]?.toUpperCase() ?? ""}${camel.slice(1)}`
    : reserved.has(camel) || taken(camel)
    ? `${camel}${Kind}`
    : camel
  return {
    package: name,
    plugin,
    ident,
    Ident: ident[0]!.toUpperCase() + ident.slice(1),
    env: words.join("_").toUpperCase().replace(/^(?=[0-9])/, "_") || kind.toUpperCase()
  }
}

/** What to make. */
export interface Options {
  readonly kind: Kind
  /** The npm package name. */
  readonly name: string
  /** Where (default: a directory named after the package, without its scope, in `cwd`). */
  readonly dir?: string
  readonly cwd: string
  /** This effetl's version: the generated package depends on the same `@effetl/core` (default: this package's). */
  readonly version?: string
  /** The ranges of `effect` and `@effect/platform` (default: those effetl itself depends on). */
  readonly effectVersions?: Readonly<Record<string, string>>
}

/** This package's version and its ranges of `effect` and `@effect/platform` (from its package.json). */
export const own = (): { readonly version: string; readonly effectVersions: Readonly<Record<string, string>> } => {
  const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string
    dependencies: Record<string, string>
  }
  return {
    version: pkg.version,
    effectVersions: Object.fromEntries(["effect", "@effect/platform"].map((d) => [d, pkg.dependencies[d]!]))
  }
}

/** What was made. */
export interface Made {
  readonly kind: Kind
  readonly dir: string
  readonly names: Names
  /** The files written, relative to `dir`, sorted. */
  readonly files: ReadonlyArray<string>
}

/**
 * Writes the package. Fails with a one-line `ConfigError` (exit 2) for a name that is not a valid
 * package name, or a `dir` that exists and is not an empty directory; writes nothing then.
 */
export const make = (options: Options): Effect.Effect<Made, ConfigError> =>
  Effect.suspend(() => {
    const refuse = (message: string) => Effect.fail(new ConfigError({ message }))
    const problem = packageNameProblem(options.name)
    if (problem !== undefined) return refuse(`'${options.name}' is not a valid npm package name: ${problem}`)
    const names = namesOf(options.kind, options.name)
    const dir = path.resolve(options.cwd, options.dir ?? options.name.replace(/^@[^/]+\//, ""))
    const shown = path.relative(options.cwd, dir) || "."
    let stat: fs.Stats | undefined
    try {
      stat = fs.statSync(dir)
    } catch {
      stat = undefined
    }
    if (stat !== undefined && !stat.isDirectory()) return refuse(`'${shown}' exists and is not a directory; give another --dir`)
    if (stat !== undefined && fs.readdirSync(dir).length > 0) return refuse(`'${shown}' exists and is not empty; give another --dir`)
    const version = options.version ?? own().version
    const dependencies = { "@effetl/core": `^${version}`, ...(options.effectVersions ?? own().effectVersions) }
    const devDependencies = { "@effetl/cli": `^${version}`, ...toolVersions }
    const fill = (text: string): string =>
      text
        .replaceAll("__dependencies__", indentJson(dependencies))
        .replaceAll("__devDependencies__", indentJson(devDependencies))
        .replaceAll("__package__", names.package)
        .replaceAll("__plugin__", names.plugin)
        .replaceAll("__Ident__", names.Ident)
        .replaceAll("__ident__", names.ident)
        .replaceAll("__ENV__", names.env)
    return Effect.try({
      try: () => {
        const from = templatesDir(options.kind)
        const files = (fs.readdirSync(from, { recursive: true, encoding: "utf8" }) as Array<string>)
          .filter((f) => fs.statSync(path.join(from, f)).isFile())
          .sort()
        const written: Array<string> = []
        for (const file of files) {
          const target = path.join(path.dirname(file), path.basename(file) === "gitignore" ? ".gitignore" : path.basename(file))
          fs.mkdirSync(path.join(dir, path.dirname(target)), { recursive: true })
          fs.writeFileSync(path.join(dir, target), fill(fs.readFileSync(path.join(from, file), "utf8")), { flag: "wx" })
          written.push(target.split(path.sep).join("/"))
        }
        return { kind: options.kind, dir, names, files: written.sort() }
      },
      catch: (e) => new ConfigError({ message: `cannot write '${shown}': ${e instanceof Error ? e.message : String(e)}` })
    })
  })

/** What `effetl new` prints: where the package is and what to do next. */
export const nextSteps = (made: Made, cwd: string): string => {
  const rel = path.relative(cwd, made.dir) || "."
  const lines = [
    `made ${made.names.package}: an effetl ${made.kind} plugin '${made.names.plugin}' in ${rel}/`,
    ...made.files.map((f) => `  ${f}`),
    "next:",
    `  cd ${rel.includes(" ") ? JSON.stringify(rel) : rel}`,
    "  npm install && npm run build && npm test",
    made.kind === "source"
      ? "  npm run simulate     # serves the example API and prints how to run pipeline.yaml against it"
      : "  npx effetl simulate channel   # a source to feed it; then run pipeline.yaml with the variables it prints",
    "see README.md"
  ]
  return lines.join("\n")
}

/** A JSON object for package.json, indented to sit under a top-level key. */
const indentJson = (o: Readonly<Record<string, string>>): string => JSON.stringify(o, null, 2).replaceAll("\n", "\n  ")
