/**
 * __package__: an effetl source plugin for the __plugin__ API. Name it in a pipeline with
 * `use: __package__` (installed) or `use: ./dist/index.js` (a path, relative to the pipeline file).
 */
export * as Api from "./Api.js"
export * as Client from "./Client.js"
export { __ident__, __Ident__Config } from "./Source.js"
export { __ident__ as default } from "./Source.js"
