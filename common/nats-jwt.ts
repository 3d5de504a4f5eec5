/**
 * NATS decentralized-auth JWTs (the format of github.com/nats-io/jwt v2), issued by Sweeper itself.
 *
 * A JWT is `header.claims.signature`, each base64url without padding; the signature is the
 * issuer's ed25519 nkey signing `header.claims`. nats-server 2.9 checks the chain operator →
 * account → user and enforces the permissions a user JWT carries. Only the three claim kinds
 * Sweeper issues are modelled: the server ignores fields it does not need.
 */
import { createHash } from 'node:crypto';
import { nkeys } from 'nats';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const HEADER = { typ: 'JWT', alg: 'ed25519-nkey' };

function b64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === 'string' ? data : Buffer.from(data)).toString('base64url');
}

/** RFC 4648 base32 without padding, as the Go library writes a JWT's id. */
function base32(data: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export interface SubjectPermissions {
  allow?: string[];
  deny?: string[];
}

export interface UserPermissions {
  pub: SubjectPermissions;
  sub: SubjectPermissions;
}

/** Sign `nats` claims about `subject` with `issuer`. */
function encode(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = {
    jti: '',
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  // The id is a hash of the claims without it, as the Go library computes it.
  claims.jti = base32(createHash('sha256').update(JSON.stringify(claims)).digest());
  const signingInput = `${b64url(JSON.stringify(HEADER))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${b64url(issuer.sign(new TextEncoder().encode(signingInput)))}`;
}

export function operatorJwt(operator: KeyPair, name: string, systemAccount?: string): string {
  return encode(operator, operator.getPublicKey(), name, { type: 'operator', ...(systemAccount ? { system_account: systemAccount } : {}) });
}

/**
 * An account with no limits of its own and JetStream on (2.9 enables it for nonzero storage
 * limits). Users signed by one of `signingKeys` belong to it: replacing a signing key revokes
 * every user it signed while the account, and so its JetStream data, stays the same.
 */
export function accountJwt(operator: KeyPair, accountPublicKey: string, name: string, opts: { jetstream: boolean; signingKeys?: string[] }): string {
  const limits: Record<string, number | boolean> = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  if (opts.jetstream) Object.assign(limits, { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 });
  return encode(operator, accountPublicKey, name, {
    type: 'account',
    limits,
    default_permissions: { pub: {}, sub: {} },
    ...(opts.signingKeys?.length ? { signing_keys: opts.signingKeys } : {}),
  });
}

/**
 * A user of the account, signed by the account's key or (with `issuerAccount`, the account's
 * public key) by one of its signing keys; without `permissions` it may do all the account may.
 */
export function userJwt(signer: KeyPair, userPublicKey: string, name: string, permissions?: UserPermissions, issuerAccount?: string): string {
  return encode(signer, userPublicKey, name, {
    type: 'user',
    ...(issuerAccount ? { issuer_account: issuerAccount } : {}),
    subs: -1,
    data: -1,
    payload: -1,
    ...(permissions ? { pub: permissions.pub, sub: permissions.sub } : {}),
  });
}

/** The claims of a JWT, unverified: for tests and diagnostics. */
export function decodeJwtClaims(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** The `.creds` file format nats CLI tools read: the JWT and the seed between markers. */
export function formatCreds(jwt: string, seed: Uint8Array | string): string {
  const s = typeof seed === 'string' ? seed : new TextDecoder().decode(seed);
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    s,
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}

export function parseCreds(text: string): { jwt: string; seed: string } {
  const jwt = /-----BEGIN NATS USER JWT-----\s*([^\s-][^\s]*)\s*------END NATS USER JWT------/.exec(text)?.[1];
  const seed = /-----BEGIN USER NKEY SEED-----\s*(SU[A-Z2-7]+)\s*------END USER NKEY SEED------/.exec(text)?.[1];
  if (!jwt || !seed) throw new Error('not a NATS credentials file');
  return { jwt, seed };
}
