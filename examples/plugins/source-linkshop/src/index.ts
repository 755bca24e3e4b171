/**
 * effetl-source-linkshop: the worked example of docs/guide/write-a-source.md. The source plugin is
 * the default export, so a pipeline can name the package or module in `use:`.
 */
import { linkshop } from "./Source.js"

export * as Api from "./Api.js"
export * as Client from "./Client.js"
export { LinkShopConfig, linkshop, Position } from "./Source.js"
export default linkshop
