import { describe, expect, it } from 'vitest';
import { canTransition, refusal } from '../src/process-state.js';

describe('process state machine', () => {
  it('allows the lifecycle containerd allows', () => {
    expect(refusal('created', 'start')).toBeUndefined();
    expect(refusal('running', 'pause')).toBeUndefined();
    expect(refusal('paused', 'resume')).toBeUndefined();
    expect(refusal('stopped', 'delete')).toBeUndefined();
    expect(refusal('created', 'delete')).toBeUndefined();
    expect(refusal('created', 'kill')).toBeUndefined();
    expect(canTransition('created', 'running')).toBe(true);
    expect(canTransition('running', 'paused')).toBe(true);
    expect(canTransition('paused', 'running')).toBe(true);
    expect(canTransition('running', 'stopped')).toBe(true);
    expect(canTransition('stopped', 'deleted')).toBe(true);
  });

  it('refuses the rest with a reason', () => {
    expect(refusal('running', 'delete')).toBe('cannot delete a running process: stop it first');
    expect(refusal('running', 'start')).toBe('cannot start a running process');
    expect(refusal('stopped', 'start')).toBe('cannot start a stopped process');
    expect(refusal('running', 'resume')).toBe('cannot resume a running process: it is not paused');
    expect(refusal('paused', 'pause')).toBe('already paused');
    expect(refusal('stopped', 'kill')).toBe('process already finished');
    expect(refusal('deleted', 'pids')).toBe('cannot pids a deleted process');
    expect(canTransition('stopped', 'running')).toBe(false);
    expect(canTransition('deleted', 'created')).toBe(false);
    expect(canTransition('created', 'paused')).toBe(false);
  });
});
