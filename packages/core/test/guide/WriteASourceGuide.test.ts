/**
 * docs/guide/write-a-source.md stays true: every TypeScript block in it names its file on its first
 * line (`// examples/plugins/source-linkshop/src/Api.ts`, `// packages/core/src/http/Paginate.ts`)
 * and is a verbatim piece of that file, so the guide's code is the worked example's code (compiled
 * and tested by LinkShop.test.ts) and the signatures it quotes are core's. Its relative links lead
 * somewhere, and the root README links to it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../../../..")
const guideFile = path.join(root, "docs/guide/write-a-source.md")
const guide = fs.readFileSync(guideFile, "utf8")

/** The guide's ```ts blocks. */
const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)\n```/g)].map((m) => m[1]!)

describe("docs/guide/write-a-source.md", () => {
  it("has code blocks, each a verbatim piece of the file named on its first line", () => {
    expect(blocks.length).toBeGreaterThan(10)
    for (const block of blocks) {
      const [first = "", ...rest] = block.split("\n")
      const named = /^\/\/ ((?:examples|packages)\/\S+\.ts)$/.exec(first)?.[1]
      expect(named, `a block does not name its file: ${first}`).toBeDefined()
      const file = path.join(root, named!)
      expect(fs.existsSync(file), `${named} does not exist`).toBe(true)
      expect(fs.readFileSync(file, "utf8"), `a block is no longer in ${named}:\n${rest.join("\n")}`).toContain(rest.join("\n"))
    }
  })

  it("its relative links lead to files that exist", () => {
    const links = [...guide.matchAll(/\]\((\.\.?\/[^)#]+)\)/g)].map((m) => m[1]!)
    expect(links.length).toBeGreaterThan(0)
    for (const link of links) expect(fs.existsSync(path.resolve(path.dirname(guideFile), link)), link).toBe(true)
  })

  it("is linked from the root README", () => {
    expect(fs.readFileSync(path.join(root, "README.md"), "utf8")).toContain("(docs/guide/write-a-source.md)")
  })
})
