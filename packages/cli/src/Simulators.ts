/**
 * The API simulators `effetl simulate <api>` can serve: the built-ins, each one's package imported
 * only when it starts (so listing them for `--help` loads nothing), and an outside one from a module
 * path or package that exports a core `Simulator` (see {@link outside}).
 */
import type { Faults, Simulator } from "@effetl/core/simulator"
import { createRequire } from "node:module"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

/** The fault kinds `effetl simulate --faults` accepts. */
export const faultKinds = ["5xx", "429", "reset", "truncate", "latency", "stall", "malformed"] as const

/** A simulator the CLI can serve: what `effetl simulate <api>` starts. */
export interface SimulatorEntry {
  readonly api: string
  readonly description: string
  /** Starts it; returns what to print and how to stop it. */
  readonly start: (options: { port: number; faults: ReadonlyArray<string>; faultRate: number }) => Promise<{
    readonly url: string
    readonly lines: ReadonlyArray<string>
    readonly close: () => Promise<void>
  }>
}

/**
 * The built-in simulators, by API name. Every command a simulator prints runs as printed against it,
 * from the repository root (test/Simulators.test.ts runs each one).
 */
export const simulators: ReadonlyArray<SimulatorEntry> = [
  {
    api: "channel",
    description: "Akinon Omnitron sales channel product images (DRF pagination, detailed/queues, media bytes)",
    start: async ({ port, faults, faultRate }) => {
      const { startChannelSimulator } = await import("@effetl/source-channel/simulator")
      const sim = await startChannelSimulator({
        port,
        ...(faults.length > 0 ? { faults: { kinds: faults as any, rate: faultRate } } : {})
      })
      return {
        url: sim.url,
        lines: [
          `channel simulator listening on ${sim.url}`,
          `  channel id: ${sim.channelId}   token: ${sim.token}   images: ${sim.catalogue.length}`,
          `  try: curl -H 'Authorization: Token ${sim.token}' '${sim.url}/api/v1/channel/${sim.channelId}/product_images/detailed/?limit=2'`,
          `  run the example pipeline against it:`,
          `    CHANNEL_BASE_URL=${sim.url} CHANNEL_TOKEN=${sim.token}${sim.channelId === 5 ? "" : ` CHANNEL_ID=${sim.channelId}`} npx effetl run examples/channel.yaml`,
          `  (examples/demo.yaml needs all four APIs: npm run demo starts their simulators and runs it)`,
          faults.length > 0 ? `  faults: ${faults.join(", ")} at rate ${faultRate}` : `  faults: none (use --faults 5xx,429,reset,truncate,latency)`
        ],
        close: () => sim.close()
      }
    }
  },
  {
    api: "acceo",
    description: "Acceo Ogasys product images (change feed by 64-bit token, images by product id, JSON and XML, base64 or URL images)",
    start: async ({ port, faults, faultRate }) => {
      const { startAcceoSimulator } = await import("@effetl/source-acceo/simulator")
      const sim = await startAcceoSimulator({ port, ...(faults.length > 0 ? { faults: { kinds: faults as any, rate: faultRate } } : {}) })
      const images = sim.catalogue.reduce((n, p) => n + p.images.length, 0)
      return {
        url: sim.url,
        lines: [
          `acceo simulator listening on ${sim.url}`,
          `  api key: ${sim.apiKey}   products: ${sim.catalogue.length}   images: ${images}   feed entries: ${sim.feed().length}`,
          `  try: curl -H '${sim.auth.header}: ${sim.auth.value}' '${sim.url}/products/images?count=2&options=URL'`,
          `  run the example pipeline against it:`,
          `    ACCEO_BASE_URL=${sim.url} ACCEO_API_KEY=${sim.apiKey} npx effetl run examples/acceo.yaml`,
          faults.length > 0 ? `  faults: ${faults.join(", ")} at rate ${faultRate}` : `  faults: none (use --faults 5xx,429,reset,truncate,latency)`
        ],
        close: () => sim.close()
      }
    }
  },
  {
    api: "shoplazza",
    description: "Shoplazza OpenAPI 2022-01 products with their images inline (per_page/cursor list, updated_at_min, count; per-product images endpoint), leaky bucket 40 @ 2/s, protocol-relative src",
    start: async ({ port, faults, faultRate }) => {
      const { startShoplazzaSimulator } = await import("@effetl/source-shoplazza/simulator")
      const sim = await startShoplazzaSimulator({ port, ...(faults.length > 0 ? { faults: { kinds: faults as any, rate: faultRate } } : {}) })
      const images = sim.catalogue.reduce((n, p) => n + p.images.length, 0)
      return {
        url: sim.url,
        lines: [
          `shoplazza simulator listening on ${sim.url}`,
          `  shop: ${sim.shop}   access token: ${sim.accessToken}   products: ${sim.catalogue.length}   images: ${images}`,
          `  rate limit: a leaky bucket of 40 requests leaking 2/s per token (429 with no Retry-After)`,
          `  try: curl -H 'access-token: ${sim.accessToken}' '${sim.url}/openapi/2022-01/products?per_page=2&fields=id,updated_at,images'`,
          `  run the example pipeline against it:`,
          `    SHOPLAZZA_BASE_URL=${sim.url} SHOPLAZZA_TOKEN=${sim.accessToken} SHOPLAZZA_SRC_SCHEME=http npx effetl run examples/shoplazza.yaml`,
          faults.length > 0 ? `  faults: ${faults.join(", ")} at rate ${faultRate}` : `  faults: none (use --faults 5xx,429,reset,truncate,latency)`
        ],
        close: () => sim.close()
      }
    }
  },
  {
    api: "bigcommerce",
    description: "BigCommerce V2 catalog product images (204 past the end, fixed-window quota with X-Rate-Limit-* headers, image bytes)",
    start: async ({ port, faults, faultRate }) => {
      const { startBigCommerceSimulator } = await import("@effetl/source-bigcommerce/simulator")
      const sim = await startBigCommerceSimulator({ port, ...(faults.length > 0 ? { faults: { kinds: faults as any, rate: faultRate } } : {}) })
      return {
        url: sim.url,
        lines: [
          `bigcommerce simulator listening on ${sim.url}`,
          `  store hash: ${sim.storeHash}   token: ${sim.accessToken}   products: ${sim.products.length}   images: ${sim.catalogue.length}   quota: ${sim.quota} per ${sim.windowMs / 1000} s`,
          `  try: curl -i -H 'X-Auth-Token: ${sim.accessToken}' -H 'Accept: application/json' '${sim.url}/stores/${sim.storeHash}/v2/products/${sim.products[0]?.id ?? 101}/images?limit=2'`,
          `  run the example pipeline against it:`,
          `    BIGCOMMERCE_BASE_URL=${sim.url} BIGCOMMERCE_STORE_HASH=${sim.storeHash} BIGCOMMERCE_TOKEN=${sim.accessToken} npx effetl run examples/bigcommerce.yaml`,
          faults.length > 0 ? `  faults: ${faults.join(", ")} at rate ${faultRate}` : `  faults: none (use --faults 5xx,429,reset,truncate,latency)`
        ],
        close: () => sim.close()
      }
    }
  }
]

/** Why an outside simulator could not be loaded: a usage problem (exit 2), in one line. */
export class SimulatorNotFound extends Error {}

/**
 * Loads an outside simulator: `spec` is a module path (`./sim.js`, `../x/sim.mjs`, absolute; relative
 * to `cwd`, the working directory) or an npm package name resolved from `cwd`. The module exports a
 * core `Simulator` as `simulator` or as its default export; a package whose main module has none is
 * tried at `<package>/simulator`. Fails with {@link SimulatorNotFound} saying what is wrong.
 */
export const outside = async (spec: string, cwd: string): Promise<SimulatorEntry> => {
  const builtins = simulators.map((s) => s.api).join(", ")
  const isPath = spec.startsWith("./") || spec.startsWith("../") || path.isAbsolute(spec) || /\.[cm]?js$/.test(spec)
  const isPackage = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]+)?$/i.test(spec)
  const usage = `built-in simulators: ${builtins}; or a ./path/to/simulator.js (relative to the working directory) or an npm package whose module exports \`simulator\``
  let candidates: ReadonlyArray<string>
  if (isPath) {
    const file = path.resolve(cwd, spec)
    if (!fs.existsSync(file)) throw new SimulatorNotFound(`no simulator module at ${file} (a path is relative to the working directory, ${cwd})`)
    candidates = [pathToFileURL(file).href]
  } else if (isPackage) {
    const require = createRequire(path.join(cwd, "noop.js"))
    const found = [spec, `${spec}/simulator`].flatMap((name) => {
      try {
        return [pathToFileURL(require.resolve(name)).href]
      } catch {
        return []
      }
    })
    if (found.length === 0) throw new SimulatorNotFound(`unknown simulator '${spec}': ${usage}`)
    candidates = found
  } else {
    throw new SimulatorNotFound(`unknown simulator '${spec}': ${usage}`)
  }
  for (const url of candidates) {
    let mod: { readonly simulator?: unknown; readonly default?: unknown }
    try {
      mod = (await import(url)) as typeof mod
    } catch (e) {
      throw new SimulatorNotFound(`could not load simulator module '${spec}': ${e instanceof Error ? e.message : String(e)}`)
    }
    const { Simulator } = await import("@effetl/core/simulator")
    const sim = [mod.simulator, mod.default].find(Simulator.isSimulator)
    if (sim !== undefined) return fromSimulator(sim)
  }
  throw new SimulatorNotFound(
    `module '${spec}' exports no simulator: export one as \`simulator\` (or the default export), made with Simulator.define from @effetl/core/simulator`
  )
}

/** The CLI's entry for a core `Simulator`: its lines under `<name> simulator listening on <url>`. */
const fromSimulator = (sim: Simulator.Simulator): SimulatorEntry => ({
  api: sim.name,
  description: sim.description,
  start: async ({ port, faults, faultRate }) => {
    const running = await sim.start({
      port,
      ...(faults.length > 0 ? { faults: { kinds: faults as ReadonlyArray<Faults.FaultKind>, rate: faultRate } } : {})
    })
    return {
      url: running.url,
      lines: [
        `${sim.name} simulator listening on ${running.url}`,
        ...(running.lines ?? []),
        faults.length > 0 ? `  faults: ${faults.join(", ")} at rate ${faultRate}` : `  faults: none (use --faults 5xx,429,reset,truncate,latency)`
      ],
      close: () => running.close()
    }
  }
})
