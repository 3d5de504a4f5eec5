/**
 * The validated config as stored in the event log and sent to clients: typed JSON, so integral
 * floats (`Float`) survive the round trip and a replayed sweep behaves exactly as it did.
 */
import type { ParamValue } from '../../domain/values.js';
import { Float, parseTypedJson, stringifyTyped } from '../../domain/values.js';
import { markParsed, type SweepConfig } from '../../domain/sweep-config.js';

export function encodeConfig(config: SweepConfig): string {
  return stringifyTyped(dropUndefined(config) as ParamValue);
}

/** A stored config; the event log holds only configs the parser produced, so it counts as parsed. */
export function decodeConfig(json: string): SweepConfig {
  return markParsed(parseTypedJson(json) as unknown as SweepConfig);
}

function dropUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropUndefined);
  if (v !== null && typeof v === 'object' && !(v instanceof Float)) {
    const out: Record<string, unknown> = {};
    for (const [k, e] of Object.entries(v)) if (e !== undefined) out[k] = dropUndefined(e);
    return out;
  }
  return v;
}
