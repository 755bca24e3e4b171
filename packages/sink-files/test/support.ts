/**
 * Test helpers: the services a sink needs, records, and a sink made in its own scope so a test can
 * drop it without finish or cleanup (a simulated kill).
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { ProductImage, RunStats, type Sink } from "@effetl/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** The services the runner gives plugins (the HTTP client is never used by these sinks). */
export const services = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, RunStats.layer, FetchHttpClient.layer)

export const tempDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "effetl-sink-files-"))

/** A valid record; `i` varies the ids. */
export const record = (i: number, over: Partial<ConstructorParameters<typeof ProductImage>[0]> = {}): ProductImage =>
  ProductImage.unchecked({
    source: "shop",
    productId: `p${Math.floor(i / 3)}`,
    imageId: `img-${i}`,
    position: i % 3,
    url: `https://cdn.example.com/${i}.jpg`,
    filename: `${i}.jpg`,
    width: 800,
    height: 600,
    alt: `image ${i}`,
    contentHash: null,
    createdAt: new Date(Date.UTC(2024, 0, 1, 12, 0, i)),
    updatedAt: null,
    extra: {},
    ...over
  })

export const records = (from: number, to: number): Array<ProductImage> =>
  Array.from({ length: to - from }, (_, k) => record(from + k))

/** Makes a sink from raw config in its own scope (closed when the test's scope closes). */
export const openSink = <C>(
  plugin: Sink.SinkPlugin<C>,
  raw: unknown,
  context: { readonly runId?: string; readonly committed?: unknown; readonly incremental?: boolean } = {}
) =>
  Effect.gen(function*() {
    const config = Schema.decodeUnknownSync(plugin.config)(raw)
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return yield* plugin.make(config, {
      name: "out",
      pipeline: "test",
      runId: context.runId ?? "run1",
      committed: context.committed === undefined ? Option.none() : Option.some(context.committed),
      incremental: context.incremental ?? false
    }).pipe(Scope.extend(scope))
  })

/** The sorted names in a directory. */
export const list = (dir: string): Array<string> => fs.readdirSync(dir).sort()
