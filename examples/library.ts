/**
 * The demo pipeline built in code with the core API: no YAML, no CLI. Run it with
 *   CHANNEL_BASE_URL=http://127.0.0.1:8080 CHANNEL_TOKEN=sim-token npx tsx examples/library.ts
 * (start a simulator first with `npx effetl simulate channel --port 8080`).
 * With no CHANNEL_BASE_URL it starts the channel simulator itself.
 */
import { builtinTransforms, Pipeline, Runner } from "@effetl/core"
import { csv, jsonl } from "@effetl/sink-files"
import { channel } from "@effetl/source-channel"
import { startChannelSimulator } from "@effetl/source-channel/simulator"
import * as Effect from "effect/Effect"

const transform = (name: string) => builtinTransforms.find((t) => t.name === name)!

const main = Effect.gen(function*() {
  const sim = process.env.CHANNEL_BASE_URL
    ? undefined
    : yield* Effect.acquireRelease(Effect.promise(() => startChannelSimulator()), (s) => Effect.promise(() => s.close()))
  const outDir = process.env.OUT_DIR ?? "out/library"

  const pipeline = yield* Pipeline.make({
    name: "library-demo",
    statePath: `${outDir}/state.json`,
    deadLetterPath: `${outDir}/dead-letter.jsonl`,
    sources: {
      channel: {
        use: channel,
        with: {
          baseUrl: sim?.url ?? process.env.CHANNEL_BASE_URL,
          channelId: sim?.channelId ?? Number(process.env.CHANNEL_ID ?? 5),
          token: sim?.token ?? process.env.CHANNEL_TOKEN,
          mode: "detailed"
        }
      }
    },
    transforms: [
      { use: transform("validate") },
      { use: transform("hash-content") },
      { use: transform("dedupe-by-hash"), with: { scope: "product" } },
      { use: transform("normalise-sequence"), with: { start: 1 } }
    ],
    sinks: {
      images_csv: { use: csv, with: { path: `${outDir}/images.csv` } },
      images_jsonl: { use: jsonl, with: { path: `${outDir}/images.jsonl` } }
    }
  })

  const summary = yield* Runner.runNode(pipeline)
  for (const s of summary.sources) {
    yield* Effect.logInfo(`${s.name}: read ${s.counts.read}, written ${s.counts.written}, deduped ${s.counts.deduped}`)
  }
  console.log(JSON.stringify({ runId: summary.runId, sources: summary.sources.map((s) => ({ name: s.name, ...s.counts })) }))
})

Effect.runPromise(Effect.scoped(main)).catch((e: unknown) => {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`)
  process.exitCode = 1
})
