// How sure the engine is about a proportion (step 14 of docs/grading.md): the 90 %
// interval, the probability of each grade and the proportion by each necrosis method.

import { GRADES, gradeLabel, type Grade } from './format';

export type GradeProbabilities = Record<Grade, number>;

function percent(value: number): string {
  const pct = value * 100;
  if (pct === 0) return '0';
  if (pct < 0.1) return pct.toFixed(2);
  if (pct < 10) return pct.toFixed(1);
  return pct.toFixed(0);
}

/** [0.123, 0.198] -> "12–20 %"; [0, 0.0003] -> "0–0.03 %"; null -> "" (no interval given). */
export function formatInterval(interval: readonly number[] | null | undefined): string {
  if (!interval || interval.length !== 2) return '';
  const [low, high] = interval as [number, number];
  if (!Number.isFinite(low) || !Number.isFinite(high) || low > high) return '';
  return `${percent(low)}–${percent(high)} %`;
}

/** The grades in order of probability, those of at least 1 %: "Moderate 80 % · Mild 15 % · Severe 5 %". */
export function formatGradeProbabilities(probabilities: Partial<Record<string, number>> | null | undefined): string {
  if (!probabilities) return '';
  return GRADES.map((g) => [g, probabilities[g] ?? 0] as const)
    .filter(([, p]) => p >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([g, p]) => `${gradeLabel(g)} ${Math.round(p * 100)} %`)
    .join(' · ');
}

/** {threshold: 0.21, learned: 0.19} -> "threshold 21.0 % · learned 19.0 %" ("" with one method or none). */
export function formatMethods(methods: Record<string, number> | null | undefined): string {
  const entries = Object.entries(methods ?? {});
  if (entries.length < 2) return '';
  return entries.map(([name, p]) => `${name} ${(p * 100).toFixed(1)} %`).join(' · ');
}
