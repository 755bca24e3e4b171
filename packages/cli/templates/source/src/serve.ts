/**
 * `npm run simulate [-- --port N]`: serves the __plugin__ simulator on 127.0.0.1 until Ctrl-C, and
 * prints how to run the example pipeline against it.
 */
import { start__Ident__Simulator } from "./Simulator.js"

const at = process.argv.indexOf("--port")
const port = at === -1 ? 0 : Number(process.argv[at + 1])
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error("error: --port must be an integer from 0 to 65535")
  process.exit(2)
}
const sim = await start__Ident__Simulator({ port })
console.log(`__plugin__ simulator listening on ${sim.url}`)
console.log(`  token: ${sim.token}   images: ${sim.catalogue.length}`)
console.log(`  try: curl -H 'Authorization: Bearer ${sim.token}' '${sim.url}/v1/images?limit=2'`)
console.log(`  run the example pipeline against it:`)
console.log(`    __ENV___BASE_URL=${sim.url} __ENV___TOKEN=${sim.token} npx effetl run pipeline.yaml`)
console.log("(Ctrl-C to stop)")
const stop = () => void sim.close().then(() => process.exit(0))
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
