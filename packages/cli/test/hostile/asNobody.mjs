// Runs the built `effetl` as user and group 65534 ("nobody") for the permission tests. The CLI and
// everything it loads on demand are loaded first, as the test's own user (root, who reads
// everything), by an in-process `effetl plugins` whose output is dropped: that resolves yargs,
// the commands module and every built-in plugin package from the very modules that import them,
// so nothing is looked up on disk again. Then the process drops to nobody and runs the command, so
// what the command itself opens (the pipeline file, plugin modules, outputs, state) is opened as
// nobody, while the checkout may sit in a directory nobody cannot enter (a clone in `mktemp -d`).
// One HTTP request through undici (the HTTP client's engine) loads what undici loads on first use.
//
//   node asNobody.mjs <effetl arguments...>
const { main, processIo } = await import("../../dist/main.js")
const quiet = { ...processIo, stdout: () => {}, stderr: () => {}, stderrIsTTY: false }
const loaded = await main(["plugins"], quiet)
if (loaded !== 0) throw new Error(`effetl plugins exited ${loaded} while loading the CLI`)
const http = await import("node:http")
const { request } = await import("undici")
const server = http.createServer((_req, res) => res.end("ok"))
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const answer = await request(`http://127.0.0.1:${server.address().port}/`)
await answer.body.text()
await new Promise((resolve) => server.close(resolve))
process.setgroups([65534])
process.setgid(65534)
process.setuid(65534)
process.exitCode = await main(process.argv.slice(2))
