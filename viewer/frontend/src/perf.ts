// Timing marks the browser tests read (performance.now() is relative to navigation start).
export interface PerfMarks {
  [name: string]: number;
}

const marks: PerfMarks = {};
(window as unknown as { onfhPerf: PerfMarks }).onfhPerf = marks;

export function mark(name: string): void {
  if (name in marks) return;
  marks[name] = performance.now();
  performance.mark(name);
}
