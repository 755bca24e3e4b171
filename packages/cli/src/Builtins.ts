/**
 * The plugins and simulators the `effetl` binary ships with.
 */
import { Registry, builtinTransforms } from "@effetl/core"
import { plugins as fileSinks } from "@effetl/sink-files"
import { plugins as sqlPlugins } from "@effetl/sink-sql"
import { channel } from "@effetl/source-channel"

/** Every built-in plugin, by kind. */
export const registry: Registry.Registry = Registry.make({
  sources: [channel],
  transforms: builtinTransforms,
  sinks: [...fileSinks, ...sqlPlugins.sinks],
  stateStores: sqlPlugins.stateStores
})

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

/** The built-in simulators, by API name. */
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
          `  run the demo pipeline against it:`,
          `    CHANNEL_BASE_URL=${sim.url} CHANNEL_TOKEN=${sim.token} npx effetl run examples/demo.yaml`,
          faults.length > 0 ? `  faults: ${faults.join(", ")} at rate ${faultRate}` : `  faults: none (use --faults 5xx,429,reset,truncate,latency)`
        ],
        close: () => sim.close()
      }
    }
  }
]
