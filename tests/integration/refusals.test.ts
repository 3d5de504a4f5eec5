/**
 * Refused calls against a real controller: hostile and junk configs come back INVALID_ARGUMENT,
 * naming the limit they hit or what is wrong (never INTERNAL, never a stalled controller: a limit
 * stops the parse before the work grows, and the controller answers the next call); an unknown sweep is
 * NOT_FOUND; GetStats counts each refusal by its reason; the CLI exits 2 on a config error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { runCli } from '../fixtures/cli.js';
import type { TestNats } from '../fixtures/nats.js';
import { startTestNats } from '../fixtures/nats.js';

const log = createLogger('test', () => {});
const tmp = mkdtempSync(join(tmpdir(), 'sweeper-refusals-'));
const LIMIT = 'an argument may hold at most 65536 characters';
/** The 100,000-character value of the security review, as the fourth of four. */
const LONG_VALUE = `method: grid\nparameters:\n  x:\n    values: [1, 2, 3, "${'v'.repeat(100_000)}"]\n`;
const LONG_VALUE_ERROR = `parameters.x.values[3]: makes '--x=...' an argument of 100004 characters; ${LIMIT}`;

function billionLaughs(): string {
  const lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  for (let i = 1; i < 9; i++) {
    const [prev, next] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
    lines.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(', ')}]`);
  }
  return lines.join('\n');
}

let nats: TestNats;
let controller: ControllerHandle;
let client: SweeperClient;

beforeAll(async () => {
  nats = await startTestNats();
  controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log });
  client = new SweeperClient(controller.address);
});
afterAll(async () => {
  client?.close();
  await controller?.stop();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** The refusal of a call that must fail. */
async function refusal(call: Promise<unknown>): Promise<{ code: string; details: string }> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { code: grpc.status[err.code], details: err.details };
  }
  throw new Error('the call succeeded');
}

describe('refused calls', () => {
  /** Config texts and the one-line answer each must get; all at most 1 MiB, the API's limit. */
  const junk: Array<[name: string, text: string, details: string]> = [
    ['alias bomb', billionLaughs(), "aliases expand too far (a YAML alias bomb?): at most 100 copies of an anchor's content"],
    ['scalar', '42', 'expected a sweep config mapping (method, parameters, ...), got 42'],
    ['list', '- method: grid\n- method: random\n', 'expected a sweep config mapping (method, parameters, ...), got a list'],
    ['binary', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]).toString('latin1'), 'expected a sweep config mapping (method, parameters, ...), got "\x7fELF\\u0002\\u0001\\u0001\\u0000"'],
    ['deep flow nesting', '['.repeat(1024 * 1024), 'line 1, column 65: nested more than 64 levels deep'],
    ['deep block nesting', Array.from({ length: 70 }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ' 1', 'nested more than 64 levels deep'],
    ['a megabyte of list items', '- 1\n'.repeat(250_000), 'too large: more than 100000 YAML tokens (keys, values, indicators); a sweep config needs far fewer'],
  ];

  it.each(junk)('%s: INVALID_ARGUMENT, naming the limit or the problem', async (_name, text, details) => {
    const r = await refusal(client.createSweep(text));
    expect({ code: r.code, details: r.details }).toEqual({ code: 'INVALID_ARGUMENT', details });
    // Not stalled: it answers the next call.
    expect(Array.isArray(await client.listSweeps())).toBe(true);
  });

  it('a 100,000-character value: INVALID_ARGUMENT naming its path', async () => {
    const r = await refusal(client.createSweep(LONG_VALUE, 'long.yaml'));
    expect({ code: r.code, details: r.details }).toEqual({ code: 'INVALID_ARGUMENT', details: LONG_VALUE_ERROR });
  });

  it('many long problems: the first 50, each cut at 1000 characters, arrive whole', async () => {
    const name = (i: number) => `bad name ${i}${'z'.repeat(2000)}`;
    const parameters = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [name(i), { value: 1 }]));
    const r = await refusal(client.createSweep(JSON.stringify({ method: 'grid', parameters })));
    const line = (i: number) => {
      const shown = name(i).slice(0, 57);
      const full = `parameters.${shown}...: invalid parameter name '${name(i)}': must start with a letter or '_' and hold only letters, digits, '_', '.' or '-'`;
      return `${full.slice(0, 997)}...`;
    };
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.details.split('\n')).toEqual([...Array.from({ length: 50 }, (_, i) => line(i)), '(and 150 more problems)']);
    expect(r.details.length).toBe(50 * 1001 + 23);
  });

  it('GetSweep of an unknown sweep: NOT_FOUND', async () => {
    const r = await refusal(client.getSweep('no-such-sweep'));
    expect({ code: r.code, details: r.details }).toEqual({ code: 'NOT_FOUND', details: "unknown sweep 'no-such-sweep'" });
  });

  it('GetStats counts each refusal by its reason, and the controller still works', async () => {
    const r = await refusal(client.getSweep('not a valid id!'));
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect((await client.getStats()).rejected).toEqual({ config_error: junk.length + 2, not_found: 1, invalid_request: 1 });
    const sweep = await client.createSweep('method: grid\nparameters:\n  x:\n    values: [1, 2]\n');
    expect((await client.getSweep(sweep.id)).sweep.trialLimit).toBe(2);
  });
});

describe('the CLI', () => {
  it('exits 2 naming the path, for validate and for create', async () => {
    const file = join(tmp, 'long.yaml');
    writeFileSync(file, LONG_VALUE);
    for (const args of [['validate', file], ['create', file, '--controller', controller.address]]) {
      const r = await runCli(args);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `sweeper: ${LONG_VALUE_ERROR}\n` });
    }
  });
});
