/** Small network helpers. */
import { createServer } from 'node:net';

/**
 * A TCP port free on `host` right now (the OS picks it), for servers that must be told a port
 * up front, such as a controller restarted on the same address.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
