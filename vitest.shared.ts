/**
 * Shared vitest settings for every package. Imports of `@effetl/<pkg>` and its subpaths resolve to
 * the package's TypeScript sources, so unit tests never run against a stale `dist/`.
 * (Tests that spawn the real CLI use the built `dist/`; the `test` target depends on `build`.)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { UserConfig } from "vitest/config"

const root = import.meta.dirname

const sourceAliases = (): Array<{ find: string | RegExp; replacement: string }> => {
  const aliases: Array<{ find: RegExp; replacement: string }> = []
  const packagesDir = path.join(root, "packages")
  for (const dir of fs.readdirSync(packagesDir)) {
    const pkgFile = path.join(packagesDir, dir, "package.json")
    if (!fs.existsSync(pkgFile)) continue
    const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8")) as {
      name: string
      exports?: Record<string, { default: string }>
    }
    for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
      const spec = sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`
      const src = target.default.replace(/^\.\/dist\//, "./src/").replace(/\.js$/, ".ts")
      const escaped = spec.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
      aliases.push({ find: new RegExp(`^${escaped}$`), replacement: path.join(packagesDir, dir, src) })
    }
  }
  return aliases
}

/** The vitest config every package uses. */
export const shared = (packageDir: string): UserConfig => ({
  resolve: { alias: sourceAliases() },
  test: {
    root: packageDir,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two test files at once even on 2 cores (vitest's default there is one): most of the slow
    // files wait on child processes, servers and timers, not on the CPU. Timeouts stay generous.
    maxWorkers: Math.max(2, os.availableParallelism()),
    minWorkers: 1,
    sequence: { concurrent: false }
  }
})
