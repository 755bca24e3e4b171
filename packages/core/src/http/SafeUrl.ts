/**
 * SafeUrl: building, checking and printing URLs without trusting vendors or leaking secrets.
 *
 * - {@link resolve} joins a path to a base URL (keeping the base path) and refuses absolute URLs on
 *   another origin: links the vendor sends (`next`) are only followed on the configured origin.
 * - {@link fetchable} decides whether a vendor's image URL may be fetched at all: `http:`/`https:`
 *   only, protocol-relative `//host/x` becomes `https://host/x`, and credentials are refused.
 * - {@link printable} is the form of a URL that may appear in logs and errors: no user info, and
 *   secret query parameters replaced by `***`.
 */
import * as Either from "effect/Either"
import * as Text from "../Text.js"

/** Query parameters: `undefined`/`null` are left out, arrays repeat the key. */
export type Params = Readonly<
  Record<string, string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>>
>

/** Query parameter names that are always redacted when printed (case-insensitive). */
export const defaultSecretParams: ReadonlyArray<string> = [
  "access_token",
  "api_key",
  "apikey",
  "api-key",
  "auth",
  "client_secret",
  "key",
  "password",
  "secret",
  "sig",
  "signature"
]

/** Why a URL was refused. */
export interface Refusal {
  readonly reason: string
}

/**
 * Resolves `pathOrUrl` against `base`. A relative path is appended to the base path
 * (`https://h/api/v1` + `/items/` → `https://h/api/v1/items/`). An absolute or protocol-relative URL
 * must have the base's origin. `params` are set on the result (replacing same-named ones).
 */
export const resolve = (base: URL, pathOrUrl: string, params: Params = {}): Either.Either<URL, Refusal> => {
  let url: URL
  if (isAbsolute(pathOrUrl)) {
    const parsed = parse(pathOrUrl.startsWith("//") ? `${base.protocol}${pathOrUrl}` : pathOrUrl)
    if (parsed === undefined) return Either.left({ reason: `${describe(pathOrUrl)} is not a valid URL` })
    if (parsed.origin !== base.origin) {
      return Either.left({
        reason: `${printable(parsed)} is not on ${base.origin}; links from the API are only followed on the configured origin`
      })
    }
    url = parsed
  } else {
    const basePath = base.pathname.replace(/\/+$/, "")
    const [pathPart, query = ""] = splitQuery(pathOrUrl)
    const rel = pathPart.replace(/^\/+/, "")
    url = new URL(base.href)
    // An empty path is the base itself, trailing slash kept (Django answers a 301 without it).
    url.pathname = rel === "" ? base.pathname : `${basePath}/${rel}`
    url.search = query
    url.hash = ""
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left({ reason: "URLs with credentials in them are refused" })
  }
  setParams(url, params)
  return Either.right(url)
}

/**
 * Checks that a vendor's URL may be fetched: `http:` or `https:` (a protocol-relative `//host/x`
 * becomes `https://host/x`), absolute, with no credentials. Anything else is refused with a reason.
 * A `URL` is checked as it is.
 */
export const fetchable = (raw: string | URL): Either.Either<URL, Refusal> => {
  // A URL already parsed is checked as it is (not parsed again).
  if (typeof raw !== "string") return checkFetchable(raw, raw.href)
  const text = raw.trim()
  if (text === "") return Either.left({ reason: "the URL is empty" })
  const candidate = text.startsWith("//") ? `https:${text}` : text
  const url = parse(candidate)
  if (url === undefined || !/^[a-z][a-z0-9+.-]*:/i.test(candidate)) {
    return Either.left({ reason: `${describe(text)} is not an absolute http(s) URL` })
  }
  return checkFetchable(url, text)
}

/** The checks of {@link fetchable} on a parsed URL (`text` names it in a refusal). */
const checkFetchable = (url: URL, text: string): Either.Either<URL, Refusal> => {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Either.left({ reason: `only http: and https: URLs are fetched, not ${url.protocol}` })
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left({ reason: "URLs with credentials in them are refused" })
  }
  if (url.hostname === "") return Either.left({ reason: `${describe(text)} has no host` })
  return Either.right(url)
}

/** The URL as it may be printed: no user info, secret query parameters as `***`, no fragment. */
export const printable = (url: URL | string, secretParams: ReadonlyArray<string> = defaultSecretParams): string => {
  // Nothing to hide (an image URL, most often): the URL as it is, without parsing it again.
  if (typeof url !== "string" && url.search === "" && url.hash === "" && url.username === "" && url.password === "" && !url.href.endsWith("#")) {
    return url.href
  }
  const parsed = typeof url === "string" ? parse(url) : new URL(url.href)
  if (parsed === undefined) return describe(typeof url === "string" ? url : url.href)
  parsed.username = ""
  parsed.password = ""
  parsed.hash = ""
  const secret = new Set(secretParams.map((p) => p.toLowerCase()))
  for (const name of [...new Set(parsed.searchParams.keys())]) {
    if (secret.has(name.toLowerCase())) parsed.searchParams.set(name, "***")
  }
  return parsed.href
}

/** A short, printable description of a string that is not a usable URL (scheme kept, body trimmed, no credentials, control characters escaped). */
export const describe = (text: string): string => {
  const noCreds = text.replace(/\/\/[^/@\s]*@/, "//")
  const short = noCreds.length > 80 ? `${noCreds.slice(0, 77)}...` : noCreds
  return Text.escapeControl(JSON.stringify(short))
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const isAbsolute = (s: string): boolean => s.startsWith("//") || /^[a-z][a-z0-9+.-]*:/i.test(s)

const parse = (s: string): URL | undefined => {
  try {
    return new URL(s)
  } catch {
    return undefined
  }
}

const splitQuery = (s: string): [string, string] => {
  const noHash = s.split("#")[0] ?? ""
  const i = noHash.indexOf("?")
  return i < 0 ? [noHash, ""] : [noHash.slice(0, i), noHash.slice(i)]
}

const setParams = (url: URL, params: Params): void => {
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue
    url.searchParams.delete(name)
    if (Array.isArray(value)) {
      for (const v of value as ReadonlyArray<string | number | boolean>) url.searchParams.append(name, String(v))
    } else {
      url.searchParams.set(name, String(value))
    }
  }
}
