/**
 * The worked example of docs/guide/write-a-source.md, examples/plugins/source-linkshop, is an
 * outside package (not a workspace): its tests run here, in core's `npm test`, so the guide's code is
 * proven to compile (core's typecheck includes them) and to run.
 */
import "../../../../examples/plugins/source-linkshop/test/Source.test.js"
