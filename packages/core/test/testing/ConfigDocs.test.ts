import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as Config from "../../src/Config.js"
import { ConfigDocs } from "../../src/testing/index.js"

const schema = Schema.Struct({
  token: Config.required(Schema.String, { description: "The token.", examples: ["t"] }),
  pageSize: Config.withDefault(Schema.Int, 100, { description: "Per page.", examples: [50] }),
  mode: Config.withDefault(Schema.Literal("a", "b"), "a" as const, { description: "Mode.", examples: ["b"] })
})
const readme = (rows: string) => `# x\n\n## Options\n\n| option | default | |\n|---|---|---|\n${rows}\n## Next\n\n| \`mode\` | \`"a"\` | not in the options section |\n`

describe("ConfigDocs.readmeGaps", () => {
  it("is empty when every option has a row showing its default", () => {
    expect(ConfigDocs.readmeGaps(readme('| `token` | required | |\n| `pageSize` | `100` | |\n| `mode` | `"a"` | |\n'), schema, { token: "t" })).toEqual([])
  })

  it("names a missing row, a wrong default and a missing section", () => {
    expect(ConfigDocs.readmeGaps(readme("| `token` | required | |\n| `pageSize` | `50` | |\n"), schema, { token: "t" })).toEqual([
      "pageSize: the row does not show the default 100",
      "mode: no row"
    ])
    expect(ConfigDocs.readmeGaps("# x\n", schema, { token: "t" })).toEqual(['no "## Options" section'])
  })
})
