import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as Config from "../src/Config.js"
import * as PipelineSchema from "../src/PipelineSchema.js"

describe("PipelineSchema", () => {
  it("nearNames matches every string one edit from a name, and nothing further", () => {
    const near = new RegExp(`^(?:${PipelineSchema.nearNames(["csv", "dedupe-by-hash"])})$`, "u")
    for (const s of ["csv", "cvs", "cs", "csvv", "cxv", "Csv", "dedup-by-hash", "dedupe-by-hsh", "dedupe_by-hash"]) expect(near.test(s), s).toBe(true)
    for (const s of ["tsvx", "jsonl", "c", "dedupe", "./csv.js", "@acme/csv"]) expect(near.test(s), s).toBe(false)
  })

  it("an option is one flat schema with its description, and takes ${VAR} where it is typed", () => {
    const defs = {}
    const schema = PipelineSchema.of(
      Schema.Struct({
        pageSize: Config.withDefault(Config.intRange(1, 100), 10, { description: "Items per page." }),
        mode: Config.optional(Schema.Literal("a", "b"), { description: "The mode." }),
        note: Config.optional(Schema.String, { description: "Any text." })
      }),
      defs
    ) as any
    expect(JSON.stringify(schema)).not.toContain("$ref")
    expect(JSON.stringify(schema)).not.toContain("$id")
    expect(schema.properties.pageSize).toMatchObject({ description: "Items per page.", default: 10 })
    expect(schema.properties.pageSize.anyOf[0]).toEqual({ type: "integer", minimum: 1, maximum: 100 })
    expect(schema.properties.pageSize.anyOf[1].pattern).toBe(PipelineSchema.envPattern)
    expect(schema.properties.mode.anyOf[0]).toEqual({ type: "string", enum: ["a", "b"] })
    // A plain string takes ${VAR} as it is.
    expect(schema.properties.note).toEqual({ type: "string", description: "Any text." })
    expect(defs).toEqual({})
  })
})
