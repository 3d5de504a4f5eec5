/**
 * The one quoting of values in the scripts the launchers write (cli/launch/shell-quote.ts): exact
 * outputs, and every tricky value read back unchanged by real shells.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sbatchQuote, shellJoin, shellQuote } from '../../cli/launch/shell-quote.js';
import { UsageError } from '../../domain/errors.js';

const TRICKY = [
  '',
  'plain',
  'two words',
  "it's",
  "''",
  '"double"',
  '$HOME',
  '`id`',
  '$(id)',
  'a\\b',
  'line\nbreak',
  'tab\there',
  '~',
  '*',
  'a;b|c&d',
  '#not a comment',
  '-n',
  'ünïcödé',
  '!bang',
  '{a,b}',
];

describe('shellQuote', () => {
  it('leaves harmless words bare and single-quotes the rest, exactly', () => {
    expect(shellQuote('plain')).toBe('plain');
    expect(shellQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(shellQuote('--gpus=all')).toBe('--gpus=all');
    expect(shellQuote('a,b:c@d%e+f')).toBe('a,b:c@d%e+f');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('two words')).toBe("'two words'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote("''")).toBe("''\\'''\\'''");
    expect(shellQuote('$HOME')).toBe("'$HOME'");
    expect(shellQuote('a\\b')).toBe("'a\\b'");
    expect(shellQuote('line\nbreak')).toBe("'line\nbreak'");
    expect(shellQuote('~')).toBe("'~'");
    expect(shellQuote('ünïcödé')).toBe("'ünïcödé'");
  });

  it('refuses a NUL byte, which no argument can hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(UsageError);
  });

  it('joins quoted words with spaces', () => {
    expect(shellJoin(['/opt/my node/bin/node', 'agent', "it's"])).toBe("'/opt/my node/bin/node' agent 'it'\\''s'");
  });

  for (const shell of ['sh', 'bash']) {
    it(`gives ${shell} back every value unchanged, as one word`, () => {
      // printf prints each argument it got, NUL-terminated: the words the shell made of the script.
      const script = `printf '%s\\0' ${TRICKY.map(shellQuote).join(' ')}`;
      const out = execFileSync(shell, ['-c', script], { encoding: 'utf8' });
      expect(out.split('\0').slice(0, -1)).toEqual(TRICKY);
    });
  }
});

describe('sbatchQuote', () => {
  it('leaves harmless values bare and double-quotes the rest with \\ and " escaped, exactly', () => {
    expect(sbatchQuote('--output', '/data/slurm-%A_%a.out')).toBe('/data/slurm-%A_%a.out');
    expect(sbatchQuote('--chdir', '/data/my dir')).toBe('"/data/my dir"');
    expect(sbatchQuote('--chdir', '/data/#1')).toBe('"/data/#1"');
    expect(sbatchQuote('--chdir', `it's "x"`)).toBe(`"it's \\"x\\""`);
    expect(sbatchQuote('--chdir', 'a\\b')).toBe('"a\\\\b"');
  });

  it('refuses a control character, naming the flag: a directive is one line', () => {
    expect(() => sbatchQuote('--chdir', 'a\nb')).toThrow(/--chdir: .*control character/);
    expect(() => sbatchQuote('--output', 'a\tb')).toThrow(UsageError);
  });
});
