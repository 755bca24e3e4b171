/**
 * @effetl/cli: the built-in registry of the `effetl` binary and its entry point, for programs that embed it.
 */
export { loadedRegistry, registry } from "./Builtins.js"
export { type Io, main } from "./main.js"
export { type SimulatorEntry, simulators } from "./Simulators.js"
