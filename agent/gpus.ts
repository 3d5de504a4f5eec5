/**
 * GPU discovery and sampling through `nvidia-smi`, and the slots an agent runs trials in.
 *
 * The seam for tests and unusual hosts is the binary itself: `SWEEPER_NVIDIA_SMI` names it,
 * otherwise `nvidia-smi` is looked up on PATH. A host without it has no GPUs.
 */
import { execFile } from 'node:child_process';
import { UsageError } from '../domain/errors.js';

export interface Gpu {
  /** Physical index, as nvidia-smi numbers it (what CUDA_VISIBLE_DEVICES takes). */
  index: string;
  uuid: string;
  name: string;
  memoryTotalMb: number;
}

export interface GpuSample {
  index: string;
  utilizationPct: number;
  memoryUsedMb: number;
  temperatureC: number;
  powerW: number;
}

/** Where a trial runs: on one GPU (CUDA_VISIBLE_DEVICES set to it) or on none. */
export interface Slot {
  gpu?: Gpu;
}

export function nvidiaSmiPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.SWEEPER_NVIDIA_SMI || 'nvidia-smi';
}

function run(bin: string, args: string[], timeoutMs = 10_000): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => resolve(err ? null : stdout));
  });
}

const rows = (csv: string) =>
  csv
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(',').map((c) => c.trim()));

/** A number from nvidia-smi, or NaN for `[N/A]`, `[Not Supported]` and the like. */
const num = (s: string | undefined) => (s !== undefined && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : NaN);

/**
 * The GPUs this agent may use: every GPU nvidia-smi lists, narrowed to CUDA_VISIBLE_DEVICES (by
 * index or UUID, in its order) when that is set, as CUDA itself would narrow them.
 */
export async function discoverGpus(env: NodeJS.ProcessEnv = process.env): Promise<Gpu[]> {
  const out = await run(nvidiaSmiPath(env), ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits']);
  if (out === null) return [];
  const all = rows(out)
    .filter((r) => r.length >= 4)
    .map(([index, uuid, name, mem]) => ({ index, uuid, name, memoryTotalMb: num(mem) }));
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible === undefined) return all;
  const picked: Gpu[] = [];
  for (const id of visible.split(',').map((s) => s.trim()).filter(Boolean)) {
    const gpu = all.find((g) => g.index === id || g.uuid === id || (id.startsWith('GPU-') && g.uuid.startsWith(id)));
    if (gpu && !picked.includes(gpu)) picked.push(gpu);
  }
  return picked;
}

export async function sampleGpus(env: NodeJS.ProcessEnv = process.env): Promise<GpuSample[]> {
  const out = await run(nvidiaSmiPath(env), [
    '--query-gpu=index,utilization.gpu,memory.used,temperature.gpu,power.draw',
    '--format=csv,noheader,nounits',
  ]);
  if (out === null) return [];
  return rows(out)
    .filter((r) => r.length >= 5)
    .map(([index, util, mem, temp, power]) => ({
      index,
      utilizationPct: num(util),
      memoryUsedMb: num(mem),
      temperatureC: num(temp),
      powerW: num(power),
    }));
}

/**
 * `--gpus all` (every visible GPU), `--gpus 0,2,5` (those indices; a single one as `3,`), or
 * `--gpus N` (the first N).
 */
export function selectGpus(spec: string, gpus: Gpu[]): Gpu[] {
  const s = spec.trim();
  if (s === 'all') {
    if (gpus.length === 0) throw new UsageError('--gpus all: no GPU found (is nvidia-smi on PATH? set SWEEPER_NVIDIA_SMI to point at it)');
    return gpus;
  }
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1) throw new UsageError('--gpus N takes at least 1');
    if (n > gpus.length) throw new UsageError(`--gpus ${n}: only ${gpus.length} GPU${gpus.length === 1 ? '' : 's'} visible`);
    return gpus.slice(0, n);
  }
  const ids = s.split(',').map((x) => x.trim()).filter(Boolean);
  if (ids.length === 0) throw new UsageError(`--gpus '${spec}': expected all, a count, or indices such as 0,2,5`);
  return ids.map((id) => {
    const gpu = gpus.find((g) => g.index === id || g.uuid === id);
    if (!gpu) throw new UsageError(`--gpus: no visible GPU '${id}' (visible: ${gpus.map((g) => g.index).join(', ') || 'none'})`);
    return gpu;
  });
}

/** The agent's slots: `perGpu` per selected GPU, or `parallel` GPU-less ones. */
export function buildSlots(opts: { gpus?: Gpu[]; perGpu?: number; parallel?: number }): Slot[] {
  if (opts.gpus && opts.gpus.length > 0) {
    const per = Math.max(1, opts.perGpu ?? 1);
    return opts.gpus.flatMap((gpu) => Array.from({ length: per }, () => ({ gpu })));
  }
  return Array.from({ length: Math.max(1, opts.parallel ?? 1) }, () => ({}));
}
