/**
 * `sweeper launch ssh` without a host: the commands it runs there (exact text), the host list it
 * accepts, the controller addresses it refuses, and the options it refuses before any ssh runs.
 * The real thing, through a real sshd, is tests/integration/launch-ssh.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../domain/errors.js';
import { launchSsh, sshCancel, sshStatus } from '../../cli/launch/ssh.js';
import { sshArgv } from '../../cli/launch/ssh-exec.js';
import { checkControllerReachable, hostNameOf, parseHosts } from '../../cli/launch/ssh-hosts.js';
import {
  agentArgs,
  cancelCommand,
  parseCancel,
  parseStarted,
  parseStatus,
  startCommand,
  startInput,
  statusCommand,
} from '../../cli/launch/ssh-remote.js';

const records = mkdtempSync(join(tmpdir(), 'sweeper-launch-ssh-unit-'));
afterAll(() => rmSync(records, { recursive: true, force: true }));

/** The script `sh -c SCRIPT` runs, as a real shell unquotes it. */
const scriptOf = (command: string) => {
  expect(command.startsWith('sh -c ')).toBe(true);
  return execFileSync('sh', ['-c', `printf %s ${command.slice('sh -c '.length)}`], { encoding: 'utf8' });
};

const PROCESS = { pid: 4242, startTime: '123456', bootId: '0b1d-2c3e' };
const ALIVE =
  'alive() { [ "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" = "$boot" ] && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1; ' +
  'set -f; set -- ${stat##*") "}; set +f; case $1 in Z|X) return 1;; esac; shift 19; [ "$1" = "$start" ]; }';

describe('the start command', () => {
  it('is exactly this for plain values', () => {
    const command = startCommand({ sweepId: 'k3x9q2ab', workdir: '/home/me/proj', sweeper: 'sweeper', index: 0, gpus: '0,2' });
    expect(command).toBe(
      `sh -c 'set +m
fail() { echo "sweeper launch: $(uname -n): $2" >&2; exit "$1"; }
workdir=/home/me/proj
sweeper=sweeper
log=.sweeper/launch/k3x9q2ab/agent-0.log
set -- agent k3x9q2ab --gpus 0,2
cd "$workdir" 2>/dev/null || fail 3 "no folder $workdir to run the agent in (--workdir)"
command -v "$sweeper" >/dev/null 2>&1 || fail 3 "no $sweeper command (put sweeper on the PATH there, or give --sweeper PATH or --bundle DIR)"
command -v setsid >/dev/null 2>&1 || fail 4 "no setsid (util-linux): cannot start an agent that outlives the ssh session"
IFS= read -r SWEEPER_CONTROLLER && IFS= read -r SWEEPER_TOKEN || fail 4 "the controller address and token did not arrive on stdin"
export SWEEPER_CONTROLLER
if [ -n "$SWEEPER_TOKEN" ]; then export SWEEPER_TOKEN; else unset SWEEPER_TOKEN; fi
mkdir -p "\${log%/*}" && chmod 700 "\${log%/*}" || fail 4 "cannot create $PWD/\${log%/*}"
setsid "$sweeper" "$@" </dev/null >>"$log" 2>&1 &
pid=$!
stat=$(cat "/proc/$pid/stat" 2>/dev/null) || fail 4 "the agent exited at once: see $PWD/$log"
boot=$(cat /proc/sys/kernel/random/boot_id)
set -f; set -- \${stat##*") "}; set +f; shift 19
echo "sweeper-launch: started pid=$pid start=$1 boot=$boot log=$PWD/$log"'`,
    );
  });

  it('quotes every value it interpolates, however odd, and holds no secret', () => {
    const script = scriptOf(startCommand({ sweepId: 'k3', workdir: "/data/it's $HOME `x`", sweeper: '/opt/my bundle/sweeper', index: 7, parallel: 3 }));
    const lines = script.split('\n');
    expect(lines.slice(2, 6)).toEqual([
      `workdir='/data/it'\\''s $HOME \`x\`'`,
      `sweeper='/opt/my bundle/sweeper'`,
      'log=.sweeper/launch/k3/agent-7.log',
      'set -- agent k3 --parallel 3',
    ]);
    expect(script).not.toMatch(/SWEEPER_TOKEN=|--token|--controller/);
  });

  it('passes --gpus and --parallel on to the agent, and nothing else', () => {
    expect(agentArgs({ sweepId: 's1' })).toEqual(['agent', 's1']);
    expect(agentArgs({ sweepId: 's1', gpus: 'all' })).toEqual(['agent', 's1', '--gpus', 'all']);
    expect(agentArgs({ sweepId: 's1', parallel: 4 })).toEqual(['agent', 's1', '--parallel', '4']);
  });

  it('refuses a working directory with a line break', () => {
    expect(() => startCommand({ sweepId: 's', workdir: '/a\n/b', sweeper: 'sweeper', index: 0 })).toThrow(UsageError);
  });

  it('gets the controller and the token on stdin, a line each (an empty line: no token)', () => {
    expect(startInput('10.0.0.5:50051', 's3cret')).toBe('10.0.0.5:50051\ns3cret\n');
    expect(startInput('10.0.0.5:50051', undefined)).toBe('10.0.0.5:50051\n\n');
    expect(() => startInput('10.0.0.5:50051', 'a\nb')).toThrow(UsageError);
  });

  it('reads the pid, start time, boot id and log back from among what a login script printed', () => {
    const stdout = 'Welcome to gpu1\nsweeper-launch: started pid=31337 start=998877 boot=0b1d-2c3e log=/home/me/my proj/.sweeper/launch/s/agent-0.log\n';
    expect(parseStarted(stdout)).toEqual({ pid: 31337, startTime: '998877', bootId: '0b1d-2c3e', log: '/home/me/my proj/.sweeper/launch/s/agent-0.log' });
    expect(parseStarted('sweeper-launch: started pid= start=1\n')).toBeUndefined();
  });
});

describe('the status and cancel commands', () => {
  it('status is exactly this', () => {
    expect(statusCommand(PROCESS, '/w/.sweeper/launch/s/agent-0.log', 5)).toBe(
      `sh -c 'pid=4242
start=123456
boot=0b1d-2c3e
${ALIVE}
log=/w/.sweeper/launch/s/agent-0.log
if alive; then echo "sweeper-launch: running"; else echo "sweeper-launch: gone"; fi
tail -n 5 "$log" 2>/dev/null || echo "(no log at $log)"'`,
    );
  });

  it('cancel is exactly this: SIGTERM only while pid, start time and boot still match, then wait', () => {
    expect(cancelCommand(PROCESS)).toBe(
      `sh -c 'pid=4242
start=123456
boot=0b1d-2c3e
${ALIVE}
alive || { echo "sweeper-launch: gone"; exit 0; }
kill -TERM "$pid" 2>/dev/null || { echo "sweeper-launch: gone"; exit 0; }
n=0
while alive && [ "$n" -lt 150 ]; do sleep 0.2 2>/dev/null || sleep 1; n=$((n + 1)); done
if alive; then echo "sweeper-launch: stopping"; else echo "sweeper-launch: stopped"; fi'`,
    );
  });

  it('their answers read back', () => {
    expect(parseStatus('motd\nsweeper-launch: running\nline 1\nline 2\n')).toEqual({ running: true, logLines: ['line 1', 'line 2'] });
    expect(parseStatus('sweeper-launch: gone\n')).toEqual({ running: false, logLines: [] });
    expect(parseStatus('nothing of ours\n')).toBeUndefined();
    expect(parseCancel('sweeper-launch: stopped\n')).toBe('stopped');
    expect(parseCancel('motd\nsweeper-launch: stopping\n')).toBe('stopping');
    expect(parseCancel('')).toBeUndefined();
  });

  it('ssh gets the user options, then --, the host and the command as separate arguments', () => {
    expect(sshArgv('gpu1', 'sh -c true', ['-p', '2222'])).toEqual(['-p', '2222', '--', 'gpu1', 'sh -c true']);
  });
});

describe('the host list', () => {
  it('is comma-separated ssh destinations, kept in order, a repeated host getting two agents', () => {
    expect(parseHosts('a,b')).toEqual(['a', 'b']);
    expect(parseHosts(['gpu1,me@gpu2', 'gpu1'])).toEqual(['gpu1', 'me@gpu2', 'gpu1']);
    expect(parseHosts('ssh://me@gpu3:2222,::1,fe80::1')).toEqual(['ssh://me@gpu3:2222', '::1', 'fe80::1']);
  });

  it('refuses host:port, naming the forms ssh reads', () => {
    expect(() => parseHosts('gpu1:2222')).toThrow(/host 'gpu1:2222': ssh does not read host:port; write ssh:\/\/gpu1:2222, or give the port in your ssh config/);
    expect(() => parseHosts('me@gpu1:22')).toThrow(/write ssh:\/\/me@gpu1:22/);
    expect(() => parseHosts('[::1]:22')).toThrow(UsageError);
  });

  it('refuses empty items, options in disguise and spaces', () => {
    expect(() => parseHosts('')).toThrow(/no host given/);
    expect(() => parseHosts('a,,b')).toThrow(/an empty host/);
    expect(() => parseHosts('a,')).toThrow(/an empty host/);
    expect(() => parseHosts('-oProxyCommand=touch /tmp/x')).toThrow(/begins with '-'/);
    expect(() => parseHosts('gpu 1')).toThrow(/space or control character/);
  });

  it('names the machine of each destination', () => {
    expect(['gpu1', 'me@gpu1', 'ssh://me@gpu1:2222', 'ssh://gpu1', '::1', 'me@::1', 'ssh://[::1]:22'].map(hostNameOf)).toEqual([
      'gpu1',
      'gpu1',
      'gpu1',
      'gpu1',
      '::1',
      '::1',
      '::1',
    ]);
  });
});

describe('the controller address', () => {
  it('may be loopback only when every host is this machine', () => {
    expect(() => checkControllerReachable('127.0.0.1:50051', ['127.0.0.1', 'localhost', 'me@127.0.0.1', 'ssh://[::1]:22'])).not.toThrow();
    expect(() => checkControllerReachable('10.0.0.5:50051', ['gpu1', 'gpu2'])).not.toThrow();
  });

  it('is refused when loopback (or unspecified) and a host is another machine, saying why', () => {
    expect(() => checkControllerReachable('127.0.0.1:50051', ['127.0.0.1', 'gpu1'])).toThrow(
      /^--controller 127\.0\.0\.1:50051 is a loopback address: the agent on gpu1 would look for the controller on gpu1 itself\. Give an address gpu1 can reach/,
    );
    for (const controller of ['localhost:50051', '[::1]:50051', '0.0.0.0:50051', '127.0.1.1:50051', 'dns:///localhost:50051']) {
      expect(() => checkControllerReachable(controller, ['me@gpu1']), controller).toThrow(UsageError);
    }
  });
});

describe('launchSsh refuses before it runs ssh', () => {
  // Were a check missing, ssh would run its ProxyCommand (false) and fail, reaching no network.
  const base = {
    hosts: ['gpu1.invalid'],
    sweepId: 's1',
    records,
    controller: '10.0.0.5:50051',
    sshOptions: ['-F', '/dev/null', '-o', 'ProxyCommand=false', '-o', 'BatchMode=yes'],
    log: () => {},
  };

  it.each([
    ['a loopback controller for another host', { controller: '127.0.0.1:50051' }, /is a loopback address/],
    ['--gpus with --parallel', { gpus: 'all', parallel: 2 }, /--parallel cannot be used with --gpus/],
    ['--bundle with --sweeper', { bundle: '/opt/b', sweeper: '/usr/bin/sweeper' }, /--bundle cannot be used with --sweeper/],
    ['a sweep id that is no id', { sweepId: '../x' }, /sweep id '\.\.\/x' is not valid/],
    ['a bad host list', { hosts: ['gpu1:22'] }, /ssh does not read host:port/],
  ])('%s', async (_what, change, message) => {
    const err = await launchSsh({ ...base, ...change }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  });

  it('an ssh that fails is reported as such, naming the host', async () => {
    await expect(launchSsh(base)).rejects.toThrow(/could not start 1 of 1 agents:\n {2}gpu1\.invalid: ssh failed: /);
  });

  it('status and cancel of a sweep launched nowhere print nothing', async () => {
    expect(await sshStatus(records, 'never-launched')).toEqual([]);
    expect(await sshCancel(records, 'never-launched')).toEqual([]);
  });
});
