/**
 * @effetl/cli: the built-in registry of the `effetl` binary, for programs that embed it.
 */
export { registry, simulators } from "./Builtins.js"
