// One multipart request carries all files (the server groups them into studies), so the
// per-file progress is read off the request's byte count: files go in order, each
// taking its size plus a little multipart framing.

export interface FileShare {
  name: string;
  size: number;
}

/** Fraction 0..1 done of each file when `loaded` of `total` request bytes are sent. */
export function perFileProgress(files: readonly FileShare[], loaded: number, total: number): number[] {
  const payload = files.reduce((n, f) => n + f.size, 0);
  if (total <= 0 || payload <= 0) return files.map(() => (loaded >= total && total > 0 ? 1 : 0));
  // Spread the framing evenly over the files.
  const overhead = Math.max(0, total - payload) / files.length;
  let start = 0;
  return files.map((f) => {
    const share = f.size + overhead;
    const done = share <= 0 ? 1 : Math.min(1, Math.max(0, (loaded - start) / share));
    start += share;
    return done;
  });
}

/** Rejections by file name; a name may be reported with a folder prefix or inside a zip. */
export function matchRejections(names: readonly string[], rejected: readonly { name: string; reason: string }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (key: string, reason: string) => out.set(key, [...(out.get(key) ?? []), reason]);
  for (const r of rejected) {
    const exact = names.find((n) => n === r.name);
    const prefixed = exact ?? names.find((n) => r.name.endsWith(`/${n}`) || r.name.startsWith(`${n}/`) || r.name.startsWith(`${n}:`) || n.endsWith(`/${r.name}`));
    add(prefixed ?? '', prefixed && prefixed !== r.name ? `${r.name}: ${r.reason}` : r.reason);
  }
  return out;
}
