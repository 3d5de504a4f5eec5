/**
 * Who may read the dashboard. Without a token: anyone who can reach the port (so it binds to
 * 127.0.0.1 by default), except pages reached through a foreign host name, which is how DNS
 * rebinding lets a web site read a loopback server. With a token, a request must carry it:
 *
 * - `Authorization: Bearer TOKEN`, for scripts;
 * - `?token=TOKEN` once, on a link: the answer sets a cookie and redirects to the same address
 *   without the token, so it does not linger in the address bar, history or logs;
 * - the cookie, from then on. It holds an HMAC of the token, not the token itself, so a cookie
 *   that leaks cannot be used as an API token elsewhere.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../../common/net.js';

/** Cookies are shared by every port of a host: two dashboards on one machine need two names. */
export function cookieName(port: number): string {
  return `sweeper_dashboard_${port}`;
}

export type AuthOutcome =
  | { kind: 'ok' }
  /** A valid `?token=`: set the cookie and send the browser on to `location`. */
  | { kind: 'login'; cookie: string; location: string }
  | { kind: 'denied'; status: 401 | 403; message: string };

export class DashboardAuth {
  private readonly cookieValue?: string;

  constructor(
    private readonly token: string | undefined,
    /** Host names a page may be reached under without a token (empty: any). */
    private readonly allowedHosts: ReadonlySet<string>,
    private readonly cookie: string,
    /** Served over TLS: the cookie is then never sent in clear. */
    private readonly secure = false,
  ) {
    if (token) this.cookieValue = createHmac('sha256', token).update('sweeper dashboard session').digest('base64url');
  }

  check(req: IncomingMessage, url: URL): AuthOutcome {
    if (!this.token) {
      const host = hostName(req.headers.host ?? '');
      if (this.allowedHosts.size > 0 && !this.allowedHosts.has(host)) {
        return { kind: 'denied', status: 403, message: `this dashboard answers only to ${[...this.allowedHosts].join(', ')}` };
      }
      return { kind: 'ok' };
    }
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && same(auth.slice(7).trim(), this.token)) return { kind: 'ok' };
    const cookie = readCookie(req.headers.cookie ?? '', this.cookie);
    if (cookie !== undefined && same(cookie, this.cookieValue!)) return { kind: 'ok' };
    const given = url.searchParams.get('token');
    if (given !== null && same(given, this.token)) {
      url.searchParams.delete('token');
      const location = url.pathname + (url.search || '');
      const cookie = `${this.cookie}=${this.cookieValue}; Path=/; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}`;
      return { kind: 'login', cookie, location };
    }
    return { kind: 'denied', status: 401, message: 'this dashboard needs a token: open it once with ?token=YOUR_TOKEN' };
  }
}

/** Equal strings in time that does not depend on where they differ (hashes make lengths equal). */
function same(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function readCookie(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hostName(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1).toLowerCase();
  const colon = hostHeader.lastIndexOf(':');
  return (colon >= 0 ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
}

/** Names a loopback-bound dashboard may be reached under; any name when bound elsewhere. */
export function allowedHostsFor(bindHost: string): Set<string> {
  if (!isLoopbackHost(bindHost)) return new Set();
  return new Set(['localhost', '127.0.0.1', '[::1]', bindHost.includes(':') ? `[${bindHost}]` : bindHost]);
}
