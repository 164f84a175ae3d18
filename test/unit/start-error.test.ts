import { describe, expect, it } from 'vitest';
import { describeStartError } from '../../src/start-error.ts';

/** The one stderr line of a start that fails after the configuration was read. */

const sysError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('describeStartError', () => {
  it.each([
    [sysError('EADDRINUSE', 'listen EADDRINUSE: address already in use 127.0.0.1:8080'), '127.0.0.1', 8080, 'Could not start: 127.0.0.1:8080 is already in use (EADDRINUSE); stop what listens there or set PORT to a free port'],
    [sysError('EADDRINUSE', 'listen EADDRINUSE: address already in use ::1:8080'), '::1', 8080, 'Could not start: [::1]:8080 is already in use (EADDRINUSE); stop what listens there or set PORT to a free port'],
    [
      sysError('EADDRNOTAVAIL', 'listen EADDRNOTAVAIL: address not available 10.255.255.1'),
      '10.255.255.1',
      8080,
      'Could not start: HOST 10.255.255.1 is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, or 0.0.0.0 for all',
    ],
    [
      sysError('ENOTFOUND', 'getaddrinfo ENOTFOUND 999.1.1.1'),
      '999.1.1.1',
      8080,
      'Could not start: HOST 999.1.1.1 is neither an IP address nor a name that resolves (ENOTFOUND); set HOST to an address of this machine, or 0.0.0.0 for all',
    ],
    [sysError('EACCES', 'listen EACCES: permission denied 0.0.0.0:80'), '0.0.0.0', 80, 'Could not start: no permission to listen on 0.0.0.0:80 (EACCES); use a PORT above 1023 or give the process the right to bind low ports'],
  ])('%s', (error, host, port, line) => {
    expect(describeStartError(error, { host, port })).toBe(line);
  });

  it('anything else: its message (and code) on one line', () => {
    expect(describeStartError(sysError('EMFILE', 'too many\n  open files'), { host: 'h', port: 1 })).toBe('Could not start: too many open files (EMFILE)');
    expect(describeStartError(new Error('boom'), { host: 'h', port: 1 })).toBe('Could not start: boom');
    expect(describeStartError('odd', { host: 'h', port: 1 })).toBe('Could not start: odd');
  });
});
