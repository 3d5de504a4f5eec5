/**
 * Least privilege on NATS: Sweeper as its own NATS operator (decentralized JWT auth, which
 * nats-server 2.9 supports with a memory resolver).
 *
 * A data folder's `nats-auth/` holds an operator, one account (JetStream on), the system account,
 * the account's signing key and the controller's user key, each as an nkey seed in a 0600 file,
 * created once and kept across restarts, so every credential issued stays valid until someone
 * rotates it on purpose (`sweeper nats-auth --rotate`: a new signing key and controller key).
 * Users are signed by the signing key, not the account key: JetStream keeps its data per
 * account, so rotating must not change the account. The controller connects as a user with the
 * account's full rights: it is the only writer of the
 * state stream and the only one that may use the JetStream API. Every agent proves a key of its
 * own and gets, at registration, a user JWT that may only:
 *
 *   publish   sweeper.metrics.<sweep>.<agent>.*   metrics of its trials (the controller checks the
 *                                                 trial in the last token is one it holds)
 *             sweeper.output.<sweep>.<agent>.*    its trials' live output (checked likewise)
 *   subscribe sweeper.control.<agent>             its own stop orders
 *             _INBOX.<agent>.>                    replies (JetStream's publish acks)
 *
 * so it cannot write or read sweep state, purge a stream, read another agent's orders, or
 * publish metrics or output under another agent's name.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from 'nats';
import { agentInboxPrefix, controlSubject } from '../common/control-wire.js';
import { SweeperError, UsageError } from '../domain/errors.js';
import { agentMetricsWildcard } from '../common/metrics-wire.js';
import { agentOutputWildcard } from '../common/output-wire.js';
import { accountJwt, operatorJwt, userJwt, type UserPermissions } from '../common/nats-jwt.js';

type KeyPair = ReturnType<typeof nkeys.createUser>;

export class NatsAuthError extends SweeperError {}

export function agentPermissions(sweepId: string, agentId: string): UserPermissions {
  return {
    pub: { allow: [agentMetricsWildcard(sweepId, agentId), agentOutputWildcard(sweepId, agentId)] },
    sub: { allow: [controlSubject(agentId), `${agentInboxPrefix(agentId)}.>`] },
  };
}

const KEY_FILES = { operator: 'operator.nk', account: 'account.nk', system: 'system.nk', signing: 'signing.nk', controller: 'controller.nk' } as const;
/** What `rotate` replaces: every credential ever issued, not the identities data belongs to. */
const ROTATED: ReadonlyArray<keyof typeof KEY_FILES> = ['signing', 'controller'];
const SEED_PREFIX: Record<keyof typeof KEY_FILES, string> = { operator: 'SO', account: 'SA', system: 'SA', signing: 'SA', controller: 'SU' };
const CREATE: Record<keyof typeof KEY_FILES, () => KeyPair> = {
  operator: () => nkeys.createOperator(),
  account: () => nkeys.createAccount(),
  system: () => nkeys.createAccount(),
  signing: () => nkeys.createAccount(),
  controller: () => nkeys.createUser(),
};

export class NatsAuthority {
  private constructor(
    readonly dir: string,
    private readonly operator: KeyPair,
    private readonly account: KeyPair,
    private readonly system: KeyPair,
    private readonly signing: KeyPair,
    private readonly controller: KeyPair,
  ) {}

  /** `dir/` must already hold the keys (see `create`). */
  static load(dir: string): NatsAuthority {
    const read = (file: string, prefix: string): KeyPair => {
      const path = join(dir, file);
      let seed: string;
      try {
        seed = readFileSync(path, 'utf8').trim();
      } catch (err) {
        throw new NatsAuthError(`cannot read the NATS key ${path}: ${(err as Error).message}`, { cause: err });
      }
      if (!seed.startsWith(prefix)) throw new NatsAuthError(`${path} is not an nkey seed of the right kind (expected ${prefix}...)`);
      try {
        return nkeys.fromSeed(new TextEncoder().encode(seed));
      } catch (err) {
        throw new NatsAuthError(`${path} is not a valid nkey seed`, { cause: err });
      }
    };
    const key = (name: keyof typeof KEY_FILES) => read(KEY_FILES[name], SEED_PREFIX[name]);
    return new NatsAuthority(dir, key('operator'), key('account'), key('system'), key('signing'), key('controller'));
  }

  static exists(dir: string): boolean {
    return existsSync(join(dir, KEY_FILES.account));
  }

  /** The keys of `dir`, made on first use (0700 folder, 0600 files). */
  static loadOrCreate(dir: string): NatsAuthority {
    if (NatsAuthority.exists(dir)) return NatsAuthority.load(dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // `wx`: never overwrite keys another process just wrote.
    for (const name of Object.keys(KEY_FILES) as (keyof typeof KEY_FILES)[]) writeKey(dir, name, 'wx');
    return NatsAuthority.load(dir);
  }

  /**
   * New signing and controller keys: every agent JWT issued so far stops working once the
   * server has the new config (agents register again for new ones), and the data stays.
   */
  static rotate(dir: string): NatsAuthority {
    NatsAuthority.load(dir);
    for (const name of ROTATED) writeKey(dir, name, 'w');
    return NatsAuthority.load(dir);
  }

  get accountPublicKey(): string {
    return this.account.getPublicKey();
  }

  /**
   * What a nats-server config needs to trust this operator: include it in the server's config
   * (the embedded server's is written with it; for an external server, `sweeper nats-auth`).
   */
  serverConfig(): string {
    const sys = this.system.getPublicKey();
    const acc = this.account.getPublicKey();
    return [
      `operator: ${JSON.stringify(operatorJwt(this.operator, 'sweeper', sys))}`,
      `system_account: ${sys}`,
      'resolver: MEMORY',
      'resolver_preload: {',
      `  ${acc}: ${JSON.stringify(accountJwt(this.operator, acc, 'SWEEPER', { jetstream: true, signingKeys: [this.signing.getPublicKey()] }))}`,
      `  ${sys}: ${JSON.stringify(accountJwt(this.operator, sys, 'SYS', { jetstream: false }))}`,
      '}',
      '',
    ].join('\n');
  }

  /** The controller's own credentials: every right of the account. */
  controllerCredentials(): { jwt: string; seed: Uint8Array } {
    return { jwt: userJwt(this.signing, this.controller.getPublicKey(), 'sweeper-controller', undefined, this.accountPublicKey), seed: this.controller.getSeed() };
  }

  /** A user JWT for the key an agent proved, with the rights of that agent in that sweep only. */
  agentJwt(agentPublicKey: string, sweepId: string, agentId: string): string {
    if (!/^U[A-Z2-7]{55}$/.test(agentPublicKey)) throw new UsageError('the agent sent no valid NATS user public key');
    return userJwt(this.signing, agentPublicKey, `sweeper-agent-${agentId}`, agentPermissions(sweepId, agentId), this.accountPublicKey);
  }
}

function writeKey(dir: string, name: keyof typeof KEY_FILES, flag: 'w' | 'wx'): void {
  const seed = new TextDecoder().decode(CREATE[name]().getSeed());
  writeFileSync(join(dir, KEY_FILES[name]), seed + '\n', { mode: 0o600, flag });
}
