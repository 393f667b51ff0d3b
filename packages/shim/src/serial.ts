// Per-task serialisation: operations that change a task's state run one after the other, while other
// tasks (and read-only calls) go on. A chain of promises costs one reference per task, and nothing at
// all when idle.

export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}
