/**
 * The state stores core ships: `json`, the atomic JSON file (the default when a pipeline file's
 * `state:` names no `use:`). Other stores (e.g. `@effetl/sink-sql`'s `sqlite` and `postgres`) are
 * plugins made with `StateStore.define`.
 */
import * as Schema from "effect/Schema"
import * as Config from "./Config.js"
import * as JsonFileStateStore from "./JsonFileStateStore.js"
import * as StateStore from "./StateStore.js"

/** The default state file. */
export const defaultStatePath = ".effetl/state.json"

/** The `json` state store's config. */
export const JsonStateConfig = Schema.Struct({
  path: Config.withDefault(Schema.String, defaultStatePath, {
    description: "The JSON state file (checkpoints, runs); the run lock and spill files go next to it.",
    examples: [defaultStatePath]
  })
})

/** The atomic JSON file state store, as a plugin (`state: { use: json, with: { path } }`). */
export const jsonStateStore = StateStore.define<typeof JsonStateConfig.Type>({
  name: "json",
  description:
    "Keeps the pipeline's state in a JSON file, replaced atomically (temp file, fsync, rename) on every save. The default.",
  config: JsonStateConfig,
  make: (config) => JsonFileStateStore.make(config.path)
})

/** Every state store core ships. */
export const builtinStateStores: ReadonlyArray<StateStore.StateStorePlugin> = [jsonStateStore]
