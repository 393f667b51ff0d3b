// Exact statistics of a sample of durations (ms): the seed's report fields, nearest-rank percentiles.

export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const count = s.length;
  if (count === 0) return { count: 0 };
  const mean = s.reduce((a, b) => a + b, 0) / count;
  const variance = s.reduce((a, b) => a + (b - mean) ** 2, 0) / count;
  const rank = (p) => s[Math.min(count - 1, Math.max(0, Math.ceil(p * count) - 1))];
  return {
    count,
    min: s[0],
    max: s[count - 1],
    mean,
    stddev: Math.sqrt(variance),
    median: rank(0.5),
    p75: rank(0.75),
    p95: rank(0.95),
    p99: rank(0.99),
    p999: rank(0.999),
  };
}

/** The seed's report block: one `name: value` line per field, times in ms. */
export function seedReport(title, st, perSecond) {
  const f = (x) => x.toFixed(2).padStart(12);
  return [
    title,
    `  count:       ${String(st.count).padStart(9)}`,
    `  min:         ${f(st.min)} ms`,
    `  max:         ${f(st.max)} ms`,
    `  mean:        ${f(st.mean)} ms`,
    `  stddev:      ${f(st.stddev)} ms`,
    `  median:      ${f(st.median)} ms`,
    `  75%:         ${f(st.p75)} ms`,
    `  95%:         ${f(st.p95)} ms`,
    `  99%:         ${f(st.p99)} ms`,
    `  99.9%:       ${f(st.p999)} ms`,
    `  containers per second: ${perSecond.toFixed(2)}`,
  ].join('\n');
}
