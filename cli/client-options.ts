/**
 * The options every command that talks to a controller shares (--controller, --token, --tls,
 * --tls-ca), and the client built from them.
 */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { DEFAULT_CONTROLLER, SweeperClient, type ClientSecurity } from '../common/api-client.js';
import { coerceError, UsageError } from '../domain/errors.js';

export interface ClientOptions {
  controller: string;
  token?: string;
  tls?: boolean;
  tlsCa?: string;
}

export function addClientOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--controller <addr>', 'controller gRPC address (host:port)').env('SWEEPER_CONTROLLER').default(DEFAULT_CONTROLLER))
    .addOption(new Option('--token <token>', "the controller's API token").env('SWEEPER_TOKEN'))
    .addOption(new Option('--tls', 'connect with TLS, trusting the system CAs'))
    .addOption(new Option('--tls-ca <file>', 'connect with TLS, trusting this CA certificate (PEM)').env('SWEEPER_TLS_CA'));
}

export function clientSecurity(o: ClientOptions): ClientSecurity {
  let tlsCa: Buffer | undefined;
  if (o.tlsCa) {
    try {
      tlsCa = readFileSync(o.tlsCa);
    } catch (err) {
      throw new UsageError(`cannot read --tls-ca ${o.tlsCa}: ${coerceError(err).message}`, { cause: err });
    }
  }
  return { token: o.token, tls: Boolean(o.tls), tlsCa };
}

export function clientFrom(o: ClientOptions): SweeperClient {
  return new SweeperClient(o.controller, clientSecurity(o));
}
