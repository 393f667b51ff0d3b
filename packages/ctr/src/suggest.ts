// "did you mean" for a mistyped command: the command whose words are nearest to what was typed.

/**
 * Edit distance counting an insertion, a deletion, a substitution or a swap of two neighbours as
 * one edit (optimal string alignment), O(a·b).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const up = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The command or topic nearest to the words typed (`['contaners', 'ls']`), as space-separated
 * words, or undefined when none is near enough to be a likely typo. `names` maps every name a
 * command or topic answers to (oclif ids, aliases included, `:`-separated) to the name to suggest.
 * A name that accounts for more of the typed words wins over a shorter one.
 */
export function closestCommand(
  words: readonly string[],
  names: ReadonlyMap<string, string>,
): string | undefined {
  const typed = words.filter((w) => w !== '' && !w.startsWith('-')).slice(0, 3);
  let best: { name: string; words: number; distance: number } | undefined;
  for (const [id, suggest] of names) {
    const parts = id.split(':');
    if (parts.length > typed.length) continue;
    const target = parts.join(' ');
    const distance = editDistance(typed.slice(0, parts.length).join(' '), target);
    // A typo, not another word: at most 2 edits, and fewer than a third of the letters.
    if (distance > 2 || distance * 3 > target.length) continue;
    const better =
      !best || parts.length > best.words || (parts.length === best.words && distance < best.distance);
    if (better) best = { name: suggest.replaceAll(':', ' '), words: parts.length, distance };
  }
  return best?.name;
}

/** Every name of every visible command and topic (aliases too), each mapped to what to suggest. */
export function commandNames(
  commands: readonly { id: string; aliases?: string[]; hiddenAliases?: string[]; hidden?: boolean }[],
  topics: readonly { name: string; hidden?: boolean }[] = [],
): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of commands) {
    if (c.hidden) continue;
    out.set(c.id, c.id);
    for (const a of [...(c.aliases ?? []), ...(c.hiddenAliases ?? [])]) if (!out.has(a)) out.set(a, c.id);
  }
  for (const t of topics) if (!t.hidden && !out.has(t.name)) out.set(t.name, t.name);
  return out;
}
