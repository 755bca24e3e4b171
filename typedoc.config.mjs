/**
 * TypeDoc settings for the API reference of @effetl/core in docs/api (`npm run docs`).
 *
 * The entry points are the package's public modules, read from packages/core/package.json
 * `exports` (a new export is documented without touching this file). The output is Markdown, so it
 * reads on GitHub and diffs line by line, and it is deterministic: no source links (they would
 * carry line numbers and a git revision that change with every commit), no dates. A test
 * (packages/core/test/ApiDocs.test.ts) regenerates it into a temp dir and checks docs/api is current.
 * Its front page is docs/api-intro.md.
 */
import * as fs from "node:fs"
import * as path from "node:path"

const root = import.meta.dirname
const core = path.join(root, "packages/core")
const pkg = JSON.parse(fs.readFileSync(path.join(core, "package.json"), "utf8"))

/** The TypeScript source of each public export: `./dist/x/index.js` is `src/x/index.ts`. */
const entryPoints = Object.values(pkg.exports).map((target) =>
  path.join(core, target.default.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts"))
)

/** @type {Partial<import("typedoc").TypeDocOptions & import("typedoc-plugin-markdown").PluginOptions>} */
export default {
  name: pkg.name,
  entryPoints,
  tsconfig: path.join(core, "tsconfig.json"),
  out: path.join(root, "docs/api"),
  plugin: ["typedoc-plugin-markdown"],
  readme: path.join(root, "docs/api-intro.md"),
  // Deterministic output: no links into the sources (line numbers, git revisions), nothing dated.
  disableSources: true,
  disableGit: true,
  gitRevision: "main",
  hideGenerator: true,
  excludePrivate: true,
  excludeInternal: true,
  excludeExternals: true,
  // The build type-checks; the reference only reads the doc comments, and this keeps it quick.
  skipErrorChecking: true,
  sort: ["kind", "alphabetical"],
  // Markdown: one page per module and namespace, so a page is a concept (ApiClient, Paginate, ...).
  outputFileStrategy: "modules",
  hideBreadcrumbs: true,
  excludeScopesInPaths: true,
  useCodeBlocks: true,
  expandObjects: false,
  parametersFormat: "table",
  interfacePropertiesFormat: "table",
  classPropertiesFormat: "table",
  logLevel: "Warn",
  validation: { notExported: false, invalidLink: true, notDocumented: false }
}
