/**
 * Durations as people type them (domain/durations.ts), and the CLI's duration flags built on them
 * (cli/flags.ts): exact milliseconds for every form, and errors that name the flag.
 */
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../../domain/durations.js';
import { UsageError } from '../../domain/errors.js';
import { conflictingFlags, durationOption, incompleteFlags } from '../../cli/flags.js';
import { main } from '../../cli/main.js';

const seconds = { flag: '--grace', bareUnit: 's' } as const;

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['2.s', 2_000],
    ['0.25m', 15_000],
    ['1.0005s', 1_001],
    [' 10s ', 10_000],
    // A bare number is in the flag's old unit, read as Number() read it.
    ['10', 10_000],
    ['1.5', 1_500],
    ['0.2', 200],
    ['1e2', 100_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text, seconds)).toBe(ms);
  });

  it('reads bare numbers in the unit the rule names', () => {
    expect(parseDuration('250', { flag: '--x', bareUnit: 'ms' })).toBe(250);
    expect(parseDuration('3', { flag: '--x', bareUnit: 'm' })).toBe(180_000);
  });

  it('refuses what is not a duration, naming the flag and what it expected', () => {
    const error = (text: string) => {
      try {
        parseDuration(text, seconds);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      throw new Error(`'${text}' was accepted`);
    };
    expect(error('abc')).toBe("--grace: expected a duration such as 30s, 500ms, 2m or 1h (a bare number is seconds), got 'abc'");
    for (const text of ['', '-5', '-5s', '5 s', '5S', '5d', '1h30m', 'Infinity', 'NaN', 's']) {
      expect(error(text)).toMatch(/^--grace: expected a duration such as 30s/);
    }
    expect(error('0')).toBe("--grace: expected a duration longer than 0 (a bare number is seconds), got '0'");
    expect(error('0.0001')).toMatch(/longer than 0/);
    expect(error('577h')).toBe("--grace: expected at most 576h (24 days) (a bare number is seconds), got '577h'");
  });

  it('takes 0 where the rule allows it, and up to 24 days', () => {
    expect(parseDuration('0', { ...seconds, allowZero: true })).toBe(0);
    expect(parseDuration('0ms', { ...seconds, allowZero: true })).toBe(0);
    expect(parseDuration('576h', seconds)).toBe(MAX_DURATION_MS);
    expect(MAX_DURATION_MS).toBeLessThan(2 ** 31);
  });
});

describe('formatDuration', () => {
  it('writes the shortest exact form, which parseDuration reads back', () => {
    const cases: Array<[number, string]> = [
      [10_000, '10s'],
      [30_000, '30s'],
      [500, '500ms'],
      [1_500, '1.5s'],
      [120_000, '2m'],
      [90_000, '90s'],
      [3_600_000, '1h'],
      [5_400_000, '90m'],
      [0, '0ms'],
    ];
    for (const [ms, text] of cases) {
      expect(formatDuration(ms)).toBe(text);
      expect(parseDuration(text, { ...seconds, allowZero: true })).toBe(ms);
    }
  });
});

describe('duration flags', () => {
  const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const saved = process.env.SWEEPER_TEST_DURATION;
    if (env.SWEEPER_TEST_DURATION !== undefined) process.env.SWEEPER_TEST_DURATION = env.SWEEPER_TEST_DURATION;
    else delete process.env.SWEEPER_TEST_DURATION;
    try {
      const cmd = new Command('x')
        .exitOverride()
        .addOption(durationOption('grace', 'time to exit', { defaultMs: 10_000 }))
        .addOption(durationOption('patience', 'time to wait', { env: 'SWEEPER_TEST_DURATION' }));
      cmd.parse(argv, { from: 'user' });
      return cmd.opts<{ grace: number; patience?: number }>();
    } finally {
      if (saved === undefined) delete process.env.SWEEPER_TEST_DURATION;
      else process.env.SWEEPER_TEST_DURATION = saved;
    }
  };

  it('hands over milliseconds, the default when absent', () => {
    expect(parse([])).toEqual({ grace: 10_000 });
    expect(parse(['--grace', '1.5s'])).toEqual({ grace: 1_500 });
    expect(parse(['--grace', '5'])).toEqual({ grace: 5_000 });
    expect(parse(['--patience', '2m'])).toEqual({ grace: 10_000, patience: 120_000 });
    expect(parse([], { SWEEPER_TEST_DURATION: '500ms' })).toEqual({ grace: 10_000, patience: 500 });
  });

  it('shows the default as a duration in --help', () => {
    const help = new Command('x').addOption(durationOption('grace', 'time to exit', { defaultMs: 10_000 })).helpInformation();
    expect(help).toContain('--grace <duration>');
    expect(help).toContain('(default: 10s)');
  });

  it('refuses a bad value with a UsageError naming the flag (and its variable)', () => {
    expect(() => parse(['--grace', 'soon'])).toThrow(new UsageError("--grace: expected a duration such as 30s, 500ms, 2m or 1h (a bare number is seconds), got 'soon'"));
    expect(() => parse([], { SWEEPER_TEST_DURATION: 'x' })).toThrow(/^--patience \(or SWEEPER_TEST_DURATION\): expected a duration/);
  });

  it('makes `sweeper agent --grace soon` exit 2, saying why', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      expect(await main(['node', 'sweeper', 'agent', 'sw', '--grace', 'soon'])).toBe(2);
      expect(await main(['node', 'sweeper', 'server', '--heartbeat-timeout', '0'])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(written.join('')).toContain("sweeper: --grace: expected a duration such as 30s, 500ms, 2m or 1h (a bare number is seconds), got 'soon'");
    expect(written.join('')).toContain("sweeper: --heartbeat-timeout: expected a duration longer than 0 (a bare number is seconds), got '0'");
  });
});

describe('flags that do not go together', () => {
  it('are refused with one wording', () => {
    expect(conflictingFlags('--parallel', '--gpus', 'with --gpus use --per-gpu')).toEqual(new UsageError('--parallel cannot be used with --gpus: with --gpus use --per-gpu'));
    expect(conflictingFlags('--a', '--b').message).toBe('--a cannot be used with --b');
    expect(incompleteFlags('--tls-cert', '--tls-key')).toEqual(new UsageError('--tls-cert and --tls-key go together: give both or neither'));
  });
});
