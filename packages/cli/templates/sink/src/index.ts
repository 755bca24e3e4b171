/**
 * __package__: an effetl sink plugin. Name it in a pipeline with `use: __package__` (installed) or
 * `use: ./dist/index.js` (a path, relative to the pipeline file).
 */
export { __ident__, __Ident__Config } from "./Sink.js"
export { __ident__ as default } from "./Sink.js"
