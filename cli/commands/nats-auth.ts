import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../domain/errors.js';
import { NatsAuthority } from '../../controller/nats-auth.js';

/** Where a data folder keeps Sweeper's NATS operator keys. */
export function natsAuthDir(dataDir: string): string {
  return resolve(dataDir, 'nats-auth');
}

/**
 * `sweeper nats-auth --data DIR`: Sweeper's NATS identities for an external nats-server or
 * cluster. Creates the operator, account and controller keys in DIR/nats-auth (once; 0600) and
 * writes the server config that trusts them to DIR/nats-auth/server.conf, for the server's
 * config to `include`. `sweeper server --nats URL --data DIR` then connects as the controller and
 * gives each agent an identity of its own. `--rotate` replaces the signing and controller keys:
 * every credential issued so far stops working once the servers load the new config (agents
 * register again for new ones); the account, and so the data, stays.
 */
export async function runNatsAuth(o: { data: string; rotate?: boolean }): Promise<void> {
  const dir = natsAuthDir(o.data);
  const existed = NatsAuthority.exists(dir);
  if (o.rotate && !existed) throw new UsageError(`no NATS keys to rotate in ${dir}`);
  const authority = o.rotate ? NatsAuthority.rotate(dir) : NatsAuthority.loadOrCreate(dir);
  const conf = join(dir, 'server.conf');
  writeFileSync(conf, `# Written by 'sweeper nats-auth': trust Sweeper's operator (decentralized JWT auth).\n${authority.serverConfig()}`, { mode: 0o600 });
  process.stdout.write(
    [
      `${o.rotate ? 'rotated the signing and controller keys of the' : existed ? 'kept the' : 'created'} NATS operator keys in ${dir} (account ${authority.accountPublicKey})`,
      `server config: ${conf}`,
      '',
      'On every nats-server of the cluster, copy it beside the server\'s config file as sweeper-auth.conf',
      "and add to that config (nats-server reads includes relative to the including file; keep JetStream on):",
      '  include sweeper-auth.conf',
      'then start the controller with the same data folder:',
      `  sweeper server --nats nats://HOST:4222 --data ${o.data}`,
      '',
    ].join('\n'),
  );
}
