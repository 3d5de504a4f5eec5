/**
 * Runs one command on a host through the user's own `ssh` (the system binary, so their ssh
 * config, keys, agent and jump hosts apply; Sweeper stores no credentials). The destination and
 * the command are separate argv items after `--`, never a shell string of ours; what the command
 * needs to keep secret goes on ssh's stdin.
 */
import { spawn } from 'node:child_process';
import { coerceError, MissingDependencyError } from '../../domain/errors.js';

export interface SshResult {
  /** ssh's exit status: the remote command's, or 255 when ssh itself failed (connection, authentication). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What ssh exits with when it, rather than the remote command, failed. */
export const SSH_FAILED = 255;

/** The argv of ssh for one remote command: the user's extra options first, then `--`, the host and the command. */
export function sshArgv(destination: string, remoteCommand: string, sshOptions: readonly string[] = []): string[] {
  return [...sshOptions, '--', destination, remoteCommand];
}

export function runSsh(destination: string, remoteCommand: string, opts: { sshOptions?: readonly string[]; stdin?: string } = {}): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', sshArgv(destination, remoteCommand, opts.sshOptions), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new MissingDependencyError('ssh not found: install the OpenSSH client (apt-get install openssh-client)', { cause: err }));
      else reject(coerceError(err));
    });
    // ssh may exit before it reads what we send (it could not connect): its stdin then breaks, and its exit status says why.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The last few lines of ssh's stderr, for a message that says why it failed. */
export function stderrTail(result: SshResult, lines = 5): string {
  const tail = result.stderr.trim().split('\n').slice(-lines).join('\n');
  return tail === '' ? `ssh exited ${result.code ?? result.signal}` : tail;
}
