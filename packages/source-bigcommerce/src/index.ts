/**
 * @effetl/source-bigcommerce: product images of a BigCommerce store (V2 catalog API).
 */
export * as Api from "./Api.js"
export * as Client from "./Client.js"
export { bigcommerce, BigCommerceConfig, Partition, RateSettings } from "./Source.js"
export { bigcommerce as default } from "./Source.js"
