import { ConfigDocs } from "@effetl/core/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { shoplazza, ShoplazzaConfig } from "../src/Source.js"

const minimal = { shop: "acme", accessToken: "t0ken" }

describe("shoplazza config", () => {
  it("is the plugin's config schema", () => {
    expect(shoplazza.name).toBe("shoplazza")
    expect(shoplazza.config).toBe(ShoplazzaConfig)
  })

  it("every option is documented in the README, with its schema default", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, "..", "README.md"), "utf8")
    expect(ConfigDocs.readmeGaps(readme, ShoplazzaConfig, minimal)).toEqual([])
  })
})
