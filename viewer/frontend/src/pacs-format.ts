// Pure formatting of a send's state for the PACS panel (tested in pacs-format.test.ts).

export interface PacsSend {
  id: number;
  node: { id: number; name: string };
  objects: string[];
  state: 'queued' | 'sending' | 'retrying' | 'done' | 'failed';
  attempts: number;
  error: string;
  trigger: string;
  requested_by: string | null;
  created: string;
  updated: string;
}

const STATE: Record<PacsSend['state'], string> = {
  queued: 'queued',
  sending: 'sending…',
  retrying: 'will retry',
  done: 'sent',
  failed: 'failed',
};

export function sendIsActive(send: PacsSend): boolean {
  return send.state === 'queued' || send.state === 'sending' || send.state === 'retrying';
}

export function describeSend(send: PacsSend): string {
  const what = send.objects.map((o) => o.toUpperCase()).join(' + ');
  const why = send.trigger === 'confirmation' ? ' (on grade confirmation)' : '';
  const tries = send.attempts > 1 ? `, ${send.attempts} attempts` : '';
  const error = send.error && send.state !== 'done' ? `: ${send.error}` : '';
  return `${what} → ${send.node.name}: ${STATE[send.state]}${tries}${why}${error}`;
}
