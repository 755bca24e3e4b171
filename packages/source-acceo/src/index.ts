/**
 * @effetl/source-acceo: product images of Acceo Ogasys (the change feed by token, and images by
 * product id; JSON or XML; base64 or URL images).
 */
export * as Api from "./Api.js"
export * as Client from "./Client.js"
export { acceo, AcceoConfig, AuthConfig } from "./Source.js"
export { acceo as default } from "./Source.js"
