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

/**
 * Whether a host name or address (bracketed or not) is this machine's loopback: what a server
 * bound there can be reached from, and what an address advertised as it means to another host.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h.startsWith('127.') || h === '::1' || h === '[::1]';
}

/** The address to reach a server bound to `bindHost` from this machine: a wildcard bind is reached on loopback. */
export function connectHostFor(bindHost: string): string {
  if (bindHost === '0.0.0.0') return '127.0.0.1';
  if (bindHost === '::') return '::1';
  return bindHost;
}
