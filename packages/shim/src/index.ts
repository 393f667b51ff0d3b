// Public entry of @ctrd/shim: the pieces of ctrd-shim, for embedding and for tests. The program itself
// is dist/bundle/bin.js (`ctrd-shim`, dist/bin.js bundled by scripts/bundle-bin.mjs); its launch contract is in README.md.

export type { DeleteResult } from './delete-command.js';
export { deleteTask } from './delete-command.js';
export type { EventPublisherOptions, Forwarder, QueuedEvent } from './event-publisher.js';
export { EventPublisher } from './event-publisher.js';
export type { ExitRecord } from './exit-file.js';
export { EXIT_FILE_NAME, exitFilePath, readExitFile, writeExitFile } from './exit-file.js';
export type { LogFileOptions, LogStream } from './log-file.js';
export { DEFAULT_LOG_MAX_BYTES, LogFile } from './log-file.js';
export { OomWatcher, readOomKills } from './oom-watcher.js';
export type { ShimOptions } from './options.js';
export { parseCommandLine, toArgv, USAGE } from './options.js';
export type { Operation, ProcessStatus } from './process-state.js';
export { canTransition, refusal } from './process-state.js';
export type { ExitInfo, ReaperOptions, WaitPid } from './reaper.js';
export { exitStatusOf, Reaper } from './reaper.js';
export type { ConsoleSocket, Runtime, RuntimeStdio } from './runtime.js';
export type { ShimDeps } from './shim.js';
export { Shim } from './shim.js';
export { shimDir, shimSocketPath, socketDir } from './socket-address.js';
export type { StartResult } from './start-command.js';
export { startShim } from './start-command.js';
export type { ExitWatcher, Publish, StatsReader, TaskManagerOptions } from './task-manager.js';
export { INIT_PID_FILE, LOG_FILE_NAME, TaskManager } from './task-manager.js';
export { createTaskService } from './task-service.js';
