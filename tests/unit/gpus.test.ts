import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildSlots, discoverGpus, sampleGpus, selectGpus } from '../../agent/gpus.js';

const FAKE = fileURLToPath(new URL('../fixtures/bin/nvidia-smi', import.meta.url));
const env = (extra: NodeJS.ProcessEnv = {}) => ({ ...process.env, SWEEPER_NVIDIA_SMI: FAKE, CUDA_VISIBLE_DEVICES: undefined, ...extra });

describe('GPU discovery', () => {
  it('lists the GPUs nvidia-smi reports', async () => {
    expect(await discoverGpus(env())).toEqual([
      { index: '0', uuid: 'GPU-11111111-aaaa', name: 'Fake GPU A', memoryTotalMb: 40960 },
      { index: '1', uuid: 'GPU-22222222-bbbb', name: 'Fake GPU B', memoryTotalMb: 81920 },
    ]);
  });

  it('honours CUDA_VISIBLE_DEVICES, by index or UUID, in its order', async () => {
    expect((await discoverGpus(env({ CUDA_VISIBLE_DEVICES: '1' }))).map((g) => g.index)).toEqual(['1']);
    expect((await discoverGpus(env({ CUDA_VISIBLE_DEVICES: 'GPU-22222222-bbbb,0' }))).map((g) => g.index)).toEqual(['1', '0']);
    expect(await discoverGpus(env({ CUDA_VISIBLE_DEVICES: '' }))).toEqual([]);
  });

  it('finds no GPU without nvidia-smi', async () => {
    expect(await discoverGpus(env({ SWEEPER_NVIDIA_SMI: '/nonexistent/nvidia-smi' }))).toEqual([]);
  });

  it('samples utilisation, memory, temperature and power; N/A is NaN', async () => {
    const s = await sampleGpus(env());
    expect(s[0]).toEqual({ index: '0', utilizationPct: 87, memoryUsedMb: 12000, temperatureC: 65, powerW: 250.5 });
    expect(s[1].powerW).toBeNaN();
  });
});

describe('selecting GPUs and building slots', () => {
  const gpus = [
    { index: '0', uuid: 'a', name: 'A', memoryTotalMb: 1 },
    { index: '1', uuid: 'b', name: 'B', memoryTotalMb: 1 },
    { index: '2', uuid: 'c', name: 'C', memoryTotalMb: 1 },
  ];
  it('takes all, a count, or a list of indices', () => {
    expect(selectGpus('all', gpus).map((g) => g.index)).toEqual(['0', '1', '2']);
    expect(selectGpus('2', gpus).map((g) => g.index)).toEqual(['0', '1']);
    expect(selectGpus('2,0', gpus).map((g) => g.index)).toEqual(['2', '0']);
    expect(selectGpus('1,', gpus).map((g) => g.index)).toEqual(['1']);
  });
  it('says clearly what is wrong', () => {
    expect(() => selectGpus('all', [])).toThrow(/no GPU found/);
    expect(() => selectGpus('4', gpus)).toThrow('--gpus 4: only 3 GPUs visible');
    expect(() => selectGpus('0,7', gpus)).toThrow("--gpus: no visible GPU '7' (visible: 0, 1, 2)");
  });
  it('makes per-GPU slots, or plain parallel ones', () => {
    expect(buildSlots({ gpus: gpus.slice(0, 2), perGpu: 2 }).map((s) => s.gpu?.index)).toEqual(['0', '0', '1', '1']);
    expect(buildSlots({ parallel: 3 })).toEqual([{}, {}, {}]);
    expect(buildSlots({})).toEqual([{}]);
  });
});
