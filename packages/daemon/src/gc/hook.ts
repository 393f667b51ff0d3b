// How the services that delete things reach the garbage collector without depending on its
// plugin: a debounced `schedule()` after an ordinary delete, `collect()` for a sync delete.

export interface GcHook {
  schedule(): void;
  collect(signal?: AbortSignal): Promise<unknown>;
}
