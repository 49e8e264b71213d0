// The studies WebSocket (ws/studies/), reconnecting with back-off. Listeners get every
// message; the connection state is shown by whoever passes onState.
import { socketUrl, type SocketMessage } from './api';

export type SocketState = 'connecting' | 'open' | 'closed';

export class StudySocket {
  private ws: WebSocket | null = null;
  private retry = 0;
  private stopped = false;
  private readonly listeners = new Set<(m: SocketMessage) => void>();

  constructor(
    private readonly path = '/ws/studies/',
    private readonly onState: (s: SocketState) => void = () => {},
  ) {}

  start(): this {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close();
  }

  on(listener: (m: SocketMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private connect(): void {
    this.onState('connecting');
    const ws = new WebSocket(socketUrl(this.path));
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.retry = 0;
      this.onState('open');
    });
    ws.addEventListener('message', (event) => {
      let message: SocketMessage;
      try {
        message = JSON.parse(String(event.data)) as SocketMessage;
      } catch {
        return;
      }
      for (const l of this.listeners) l(message);
    });
    ws.addEventListener('close', () => {
      this.onState('closed');
      if (this.stopped) return;
      const delay = Math.min(15000, 500 * 2 ** this.retry++);
      window.setTimeout(() => this.connect(), delay);
    });
  }
}
