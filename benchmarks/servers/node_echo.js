// Node's `tls` echo server: the same certificate, stock options. Logs "listening on HOST:PORT"
// to stderr when ready; exits on SIGTERM/SIGINT.
//   node benchmarks/servers/node_echo.js CERT KEY [PORT]
'use strict';
const fs = require('fs');
const tls = require('tls');

const [cert, key, port = '0'] = process.argv.slice(2);
const server = tls.createServer(
  { cert: fs.readFileSync(cert), key: fs.readFileSync(key) },
  (socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  },
);
server.on('tlsClientError', () => {});
server.listen(Number(port), '127.0.0.1', 1024, () => {
  const addr = server.address();
  process.stderr.write(`node tls echo listening on ${addr.address}:${addr.port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
