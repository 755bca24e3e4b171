/**
 * The shared HTTP toolkit: everything a REST source needs, once. A source composes these parts and
 * adds only its wire schemas and quirks.
 * - `ApiClient`: requests with auth, timeouts, retries, rate limits, status mapping and Schema decoding;
 * - `Retry`: the retry policy and schedule (honours `Retry-After` and vendor reset headers);
 * - `RateLimit`: token-bucket and header-driven limiters shared per credential (an open header policy:
 *   any budget headers through a reader function; ready-made fixed-window and Shopify call-limit ones);
 * - `Paginate`: token feed, page number, cursor, DRF and RFC 8288 Link-header pagination as streams of pages;
 * - `ProductFanout`: enumerate products, then fetch each one's images, resumable per product;
 * - `Download`: fetching image bytes from vendor URLs safely (scheme checks, size cap, Content-Encoding);
 * - `ContentEncoding`: gzip/deflate/br bodies decoded as a stream, the size cap on the decoded bytes;
 * - `SafeUrl`: URL resolution, same-origin checks and printing without secrets;
 * - `ErrorBody`: the vendor's message and code from an error body;
 * - `LosslessJson`: JSON parsing that keeps 64-bit integers exact (as digit strings);
 * - `HttpConfig`: the shared timeout/retry/rate-limit config fields;
 * - `UndiciClient`: the platform `HttpClient` a run uses on Node, over undici (cheaper per request than
 *   `NodeHttpClient.layerUndici`).
 */
export * as ApiClient from "./ApiClient.js"
export * as ContentEncoding from "./ContentEncoding.js"
export * as Download from "./Download.js"
export * as ErrorBody from "./ErrorBody.js"
export * as HttpConfig from "./HttpConfig.js"
export * as LosslessJson from "./LosslessJson.js"
export * as Paginate from "./Paginate.js"
export * as ProductFanout from "./ProductFanout.js"
export * as RateLimit from "./RateLimit.js"
export * as Retry from "./Retry.js"
export * as SafeUrl from "./SafeUrl.js"
export * as UndiciClient from "./UndiciClient.js"
