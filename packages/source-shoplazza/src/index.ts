/**
 * @effetl/source-shoplazza: product images of a Shoplazza shop (OpenAPI 2022-01).
 */
export * as Api from "./Api.js"
export * as Client from "./Client.js"
export { defaultRateLimit, defaultRetry, endpoint, shoplazza, ShoplazzaConfig } from "./Source.js"
export { shoplazza as default } from "./Source.js"
