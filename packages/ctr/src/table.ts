export interface TableOptions {
  /** Spaces between columns (containerd's ctr uses a tabwriter with padding 4). */
  gap?: number;
}

/**
 * Aligns rows under a header the way containerd's ctr does with text/tabwriter, without the trailing
 * spaces on the last column.
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: TableOptions = {},
): string {
  const gap = options.gap ?? 4;
  const all = [header, ...rows];
  const columns = Math.max(...all.map((row) => row.length));
  const widths: number[] = [];
  for (let col = 0; col < columns; col++) {
    widths.push(Math.max(...all.map((row) => (row[col] ?? '').length)));
  }
  return all
    .map((row) => {
      const cells: string[] = [];
      for (let col = 0; col < columns; col++) {
        const cell = row[col] ?? '';
        cells.push(col === columns - 1 ? cell : cell.padEnd((widths[col] as number) + gap));
      }
      return `${cells.join('').trimEnd()}\n`;
    })
    .join('');
}
