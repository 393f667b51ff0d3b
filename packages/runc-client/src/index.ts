// Public entry of @ctrd/runc-client.
export * as argv from './argv.js';
export { Console, ConsoleSocket } from './console-socket.js';
export {
  type LogEntry,
  parseLogLine,
  RuncError,
  type RuncErrorInit,
  RuncValidationError,
  runcMessageFrom,
} from './errors.js';
export type { CpuUsage, MemoryEntry, RuncEvent, Stats } from './events.js';
export {
  fdIO,
  fileIO,
  inheritIO,
  nullIO,
  type PipeIOOptions,
  pipeIO,
  type RuncIO,
  type StdioSlot,
} from './io.js';
export { compareVersions, MIN_RUNC_VERSION, parseVersion, Runc } from './runc.js';
export {
  closeFd,
  decodeWaitStatus,
  peekExitedChild,
  setChildSubreaper,
  setWinsize,
  type WaitPidOptions,
  type WaitResult,
  waitPid,
} from './sys.js';
export type {
  PosixSpawnerOptions,
  SpawnedProcess,
  SpawnExit,
  SpawnOptions,
  Spawner,
  SpawnSlot,
} from './spawner.js';
export { exitFromStatus, nodeSpawner, posixSpawner } from './spawner.js';
export type * from './types.js';
