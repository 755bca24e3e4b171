/**
 * The built-in transforms, by short name.
 */
import { dedupeByHash } from "./transforms/DedupeByHash.js"
import { HashContent as hashContent } from "./transforms/HashContent.js"
import { normaliseSequence } from "./transforms/NormaliseSequence.js"
import { validate } from "./transforms/Validate.js"
import type { TransformPlugin } from "./Transform.js"

/** `validate`, `hash-content`, `dedupe-by-hash` and `normalise-sequence`. */
export const builtinTransforms: ReadonlyArray<TransformPlugin> = [validate, hashContent, dedupeByHash, normaliseSequence]
