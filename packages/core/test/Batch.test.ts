import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Batch from "../src/Batch.js"

describe("Batch.decodeItem", () => {
  const decode = Batch.decodeItem(Schema.Struct({ id: Schema.Int, tags: Schema.Array(Schema.String) }), "product image")

  it("decodes an item of the wire shape", () => {
    expect(decode({ id: 7, tags: ["a"] })).toEqual(Either.right({ id: 7, tags: ["a"] }))
  })

  it("rejects another shape with every issue and its path, keeping the raw item for the dead letter", () => {
    const item = { id: "7", tags: ["a", 2] }
    const rejected = decode(item)
    expect(Either.isLeft(rejected) && rejected.left.payload).toBe(item)
    expect(Either.isLeft(rejected) && rejected.left.error).toMatch(/^unexpected product image shape: id: Expected number, actual "7"; tags\[1\]: Expected string, actual 2$/)
    const notAnObject = decode(null)
    expect(Either.isLeft(notAnObject) && notAnObject.left.error).toMatch(/^unexpected product image shape: \(item\): /)
  })
})
