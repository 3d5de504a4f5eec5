/**
 * `sweeper suggest --config FILE [--seed N]`: the ask/tell optimiser (controller/ask-tell.ts)
 * over JSON lines, so any harness in any language can drive a strategy without servers.
 *
 * Out (stdout), one JSON object a line:
 *   {"id":"1","params":{...}}             a trial to run (floats keep their type: 3.0)
 *   {"done":true,"reason":"..."}          no more trials (run_cap reached, grid exhausted)
 *   {"error":"...","line":N}              input line N was not understood; nothing else changed
 * In (stdin), one JSON object a line:
 *   {"id":"1","value":0.3}                trial 1 finished with this metric value
 *   {"id":"1","state":"failed"}           trial 1 failed (also "stopped", with or without a value)
 *   {"params":{...},"value":0.3}          a result for these parameters (a trial asked for, or
 *                                         one run elsewhere, which warm-starts the search)
 *   {"ask":3}                             three more trials now (parallel workers)
 * The first trial is printed at start. Each result line is answered with the next trial, or
 * with `ask` trials when the line carries an "ask" count (0 for none). End of input ends it.
 */
import { createInterface } from 'node:readline';
import { coerceError, UsageError } from '../../domain/errors.js';
import { parseTypedJson, stringifyTyped, type ParamValue } from '../../domain/values.js';
import { createOptimizer, type Optimizer, type TellResult } from '../../controller/optimizer/ask-tell.js';
import { parseConfigFile } from '../../controller/config/parse.js';
import { isPlainObject } from '../../domain/params.js';

export interface SuggestOptions {
  config: string;
  seed?: string;
}

export async function runSuggest(options: SuggestOptions): Promise<void> {
  let seed: number | undefined;
  if (options.seed !== undefined) {
    seed = Number(options.seed);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`--seed: expected an integer >= 0, got '${options.seed}'`);
  }
  const { config, warnings } = await parseConfigFile(options.config);
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  const optimizer = createOptimizer(config, { seed });
  const write = (line: string) => process.stdout.write(line + '\n');

  emit(optimizer, 1, write);
  const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const line of input) {
    lineNumber++;
    if (line.trim() === '') continue;
    try {
      emit(optimizer, handle(optimizer, line), write);
    } catch (err) {
      write(JSON.stringify({ error: coerceError(err).message, line: lineNumber }));
    }
  }
}

/** Applies one input line; returns how many trials to print in answer. */
function handle(optimizer: Optimizer, line: string): number {
  let msg: ParamValue;
  try {
    msg = parseTypedJson(line);
  } catch (err) {
    throw new UsageError(`not JSON: ${coerceError(err).message}`, { cause: err });
  }
  if (!isPlainObject(msg)) throw new UsageError('expected a JSON object');
  const ask = msg.ask;
  if (ask !== undefined && !(typeof ask === 'number' && Number.isSafeInteger(ask) && ask >= 0)) {
    throw new UsageError("'ask' must be an integer >= 0");
  }
  const hasResult = msg.id !== undefined || msg.params !== undefined;
  if (!hasResult) {
    if (ask === undefined) throw new UsageError("expected 'id' or 'params' with a result, or 'ask'");
    return ask;
  }
  const target = msg.id !== undefined ? String(msg.id) : msg.params;
  if (typeof target !== 'string' && !isPlainObject(target)) throw new UsageError("'params' must be an object");
  optimizer.tell(target, toResult(msg));
  return ask ?? 1;
}

function toResult(msg: { [key: string]: ParamValue }): TellResult {
  const value = msg.value === undefined || msg.value === null ? null : Number(msg.value);
  const state = msg.state ?? 'finished';
  if (state === 'failed') return { state, value };
  if (state === 'finished' || state === 'stopped') {
    if (state === 'finished' && msg.value === undefined) throw new UsageError("a finished trial needs a 'value' (or state 'failed')");
    return { state, value };
  }
  throw new UsageError(`unknown state ${stringifyTyped(state)} (finished, stopped or failed)`);
}

function emit(optimizer: Optimizer, count: number, write: (line: string) => void): void {
  for (let i = 0; i < count; i++) {
    const trial = optimizer.ask();
    if (!trial) {
      write(JSON.stringify({ done: true, reason: optimizer.finishReason }));
      return;
    }
    write(`{"id":${JSON.stringify(trial.id)},"params":${stringifyTyped(trial.params)}}`);
  }
}
