#!/bin/sh
":" //; case " $NODE_OPTIONS " in *--max-old-space-size*) exec node "$0" "$@" ;; *) exec node --max-old-space-size=1024 "$0" "$@" ;; esac
// The line above is for sh, which runs this file as the `effetl` command: it starts Node with a
// 1 GiB cap on the JavaScript heap (unless NODE_OPTIONS sets one), in place (`exec`: same process).
// V8 lets its heap grow between collections by a factor it picks from that cap: 4x what is live
// with no cap on a large machine, about 1.6x with 1 GiB, which keeps a run's memory near 300 MB
// at the same CPU. To Node the line is a string and a comment. `node bin/effetl.js` skips it.
import { main } from "../dist/main.js"

process.exitCode = await main(process.argv.slice(2))
