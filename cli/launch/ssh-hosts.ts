/**
 * The hosts of `sweeper launch ssh HOST[,HOST...]`, and whether the controller's address means
 * anything there.
 *
 * Each host is an ssh destination handed to the user's own `ssh` as it is, so their ssh config
 * (aliases, users, ports, jump hosts, keys) decides where it goes. Accepted: `host`, `user@host`,
 * an alias of ~/.ssh/config, and OpenSSH's URI form `ssh://[user@]host[:port]`, the one way to
 * give a port in the list. `host:port` is refused rather than guessed at: ssh itself would take
 * the whole of it for a host name. A host may appear twice: it then gets two agents.
 */
import { isLoopbackHost } from '../../common/net.js';
import { UsageError } from '../../domain/errors.js';
import { isLocalOnlyTarget } from './controller-address.js';

/** `a,b` (or several such arguments) as the list of destinations, each checked. */
export function parseHosts(list: string | readonly string[]): string[] {
  const items = (typeof list === 'string' ? [list] : list).flatMap((item) => item.split(','));
  if (items.length === 0 || items.every((h) => h.trim() === '')) throw new UsageError('no host given: expected HOST[,HOST...]');
  return items.map(checkDestination);
}

function checkDestination(raw: string): string {
  const host = raw.trim();
  if (host === '') throw new UsageError('an empty host in the host list (two commas, or one at an end?): expected HOST[,HOST...]');
  // ssh would read it as one of its own options (-oProxyCommand=... runs a command).
  if (host.startsWith('-')) throw new UsageError(`host '${host}' begins with '-': ssh would read it as an option`);
  if (/[\s\x00-\x1f\x7f]/.test(host)) throw new UsageError(`host ${JSON.stringify(host)} has a space or control character`);
  if (!host.startsWith('ssh://') && /^(?:[^@]*@)?(?:[^:]+|\[[^\]]*\]):\d+$/.test(host)) {
    const [name, port] = [host.slice(0, host.lastIndexOf(':')), host.slice(host.lastIndexOf(':') + 1)];
    throw new UsageError(`host '${host}': ssh does not read host:port; write ssh://${name}:${port}, or give the port in your ssh config (Host ... Port ${port})`);
  }
  return host;
}

/** The machine a destination names, without user, port or URI scheme: what the loopback check looks at. */
export function hostNameOf(destination: string): string {
  let rest = destination.startsWith('ssh://') ? destination.slice('ssh://'.length) : destination;
  rest = rest.slice(rest.lastIndexOf('@') + 1);
  if (rest.startsWith('[')) return rest.slice(1, rest.indexOf(']') === -1 ? undefined : rest.indexOf(']'));
  // Only the URI form carries a port; a bare name with several colons is an IPv6 address.
  if (destination.startsWith('ssh://') && rest.split(':').length === 2) return rest.slice(0, rest.indexOf(':'));
  return rest;
}

/**
 * Refuses a controller address that would send the agent on a remote host to that host itself
 * (loopback, or the unspecified address): such an address works only when every host is this
 * machine's loopback too.
 */
export function checkControllerReachable(controller: string, hosts: readonly string[]): void {
  if (!isLocalOnlyTarget(controller)) return;
  const remote = hosts.find((h) => !isLoopbackHost(hostNameOf(h)));
  if (remote === undefined) return;
  throw new UsageError(
    `--controller ${controller} is a loopback address: the agent on ${remote} would look for the controller on ${remote} itself. ` +
      `Give an address ${remote} can reach (--controller HOST:PORT, or SWEEPER_CONTROLLER), and have the controller listen there (sweeper server --host ADDR --token ...)`,
  );
}
