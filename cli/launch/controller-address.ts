/**
 * The controller address a launcher hands to agents on other machines must name this machine as
 * they see it. A loopback address (127.0.0.1, localhost, ::1) or the unspecified one (0.0.0.0)
 * names, on a compute node, the node itself: the agents there would never find the controller.
 */
import { isIP } from 'node:net';
import { isLoopbackHost } from '../../common/net.js';
import { UsageError } from '../../domain/errors.js';

/** The host of a gRPC target (`host:port`, `[v6]:port`, `dns:///host:port`, `ipv4:a.b.c.d:port`), lowercased. */
export function targetHost(target: string): string {
  const t = target.trim().replace(/^dns:(\/\/[^/]*\/)?/i, '').replace(/^ipv[46]:/i, '').toLowerCase();
  if (t.startsWith('[')) return t.slice(1, t.includes(']') ? t.indexOf(']') : undefined);
  // A bare IPv6 address has colons of its own and no port to strip.
  if (isIP(t) === 6 || !t.includes(':')) return t;
  return t.slice(0, t.lastIndexOf(':'));
}

/** Whether the target reaches only the machine it is used on (or none: the unspecified address). */
export function isLocalOnlyTarget(target: string): boolean {
  if (/^unix:/i.test(target.trim())) return true;
  const host = targetHost(target);
  return isLoopbackHost(host) || host === '0.0.0.0' || host === '::' || /^::ffff:127\./.test(host);
}

/** Refuses a loopback controller address for agents that run on `where`, unless `allowLoopback` (a test cluster on this very machine). */
export function requireReachableController(controller: string, opts: { allowLoopback?: boolean; where: string }): void {
  if (opts.allowLoopback || !isLocalOnlyTarget(controller)) return;
  throw new UsageError(
    `--controller ${controller} is a loopback address, but the agents run on ${opts.where}, where it names that machine itself, not this one: ` +
      `give an address they can reach (such as --controller login1:50051, with 'sweeper server --host' listening there), ` +
      `or --allow-loopback when the jobs run on this very machine`,
  );
}
