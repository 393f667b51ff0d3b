import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';
import { defaultSnapshotter, snapshotterFlag } from '../../images/format.js';
import { listSnapshots } from './ls.js';

/** Lines of the parent → children forest, as containerd's `ctr snapshots tree` draws it. */
export function drawTree(snapshots: readonly { name: string; parent: string }[]): string[] {
  const names = new Set(snapshots.map((s) => s.name));
  const kids = new Map<string, string[]>();
  const roots: string[] = [];
  for (const s of snapshots) {
    if (s.parent && names.has(s.parent)) {
      const list = kids.get(s.parent) ?? [];
      list.push(s.name);
      kids.set(s.parent, list);
    } else roots.push(s.name);
  }
  const lines: string[] = [];
  const seen = new Set<string>();
  const draw = (name: string, level: number) => {
    if (seen.has(name)) return;
    seen.add(name);
    lines.push(`${'  '.repeat(level)}${level > 0 ? '\\_' : ''} ${name}`);
    for (const child of (kids.get(name) ?? []).sort()) draw(child, level + 1);
  };
  for (const root of roots.sort()) draw(root, 0);
  return lines;
}

export interface TreeNode {
  key: string;
  children: TreeNode[];
}

/** The same forest as JSON: roots, each with its children, sorted by key. */
export function treeJson(snapshots: readonly { name: string; parent: string }[]): TreeNode[] {
  const names = new Set(snapshots.map((s) => s.name));
  const nodes = new Map<string, TreeNode>(snapshots.map((s) => [s.name, { key: s.name, children: [] }]));
  const roots: TreeNode[] = [];
  for (const s of snapshots) {
    const node = nodes.get(s.name) as TreeNode;
    if (s.parent && names.has(s.parent) && s.parent !== s.name) nodes.get(s.parent)?.children.push(node);
    else roots.push(node);
  }
  const sort = (list: TreeNode[]): TreeNode[] => {
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const n of list) sort(n.children);
    return list;
  };
  return sort(roots);
}

export default class SnapshotsTree extends CtrCommand<typeof SnapshotsTree> {
  static override summary = 'draw snapshots as a tree of parents and children';
  static override hiddenAliases = aliasesOf('snapshots', ['tree']);
  static override flags = { snapshotter: snapshotterFlag, json: jsonFlag };

  async run(): Promise<void> {
    const snapshotter = this.flags.snapshotter ?? defaultSnapshotter(this.io.env);
    const infos = await listSnapshots(this.clients.get(SnapshotsService), snapshotter);
    if (this.flags.json) return this.printJson(treeJson(infos));
    const lines = drawTree(infos);
    if (lines.length > 0) this.out(lines.join('\n'));
  }
}
