/**
 * @effetl/source-channel: product images of an Akinon Omnitron sales channel.
 */
export * as Api from "./Api.js"
export * as Client from "./Client.js"
export { channel, ChannelConfig } from "./Source.js"
export { channel as default } from "./Source.js"
