// @ts-check
/**
 * A trial's output on its page: stdout and stderr side by side. While the trial runs, the lines
 * the controller holds come at once and new ones are asked for every second (only what came
 * after the last line shown, and only while the tab is visible); once it has ended, the tails
 * its agent reported replace them. A pane kept scrolled to its bottom follows new lines.
 */
import { getJson, h, replace } from './dom.js';

const POLL_MS = 1000;
/** Lines kept on the page per stream, as many as the controller holds. */
const MAX_LINES = 2000;

/**
 * @typedef {{ seq: number, stream: 'stdout' | 'stderr', at: number, text: string }} OutputLine
 * @typedef {{ state: string, live: boolean, ended: boolean, more: boolean, droppedLines: number, lines: OutputLine[] }} OutputAnswer
 */

export class TrialOutputView {
  /** @param {HTMLElement} box @param {string} url the trial's output endpoint */
  constructor(box, url) {
    this.box = box;
    this.url = url;
    /** @type {Record<'stdout' | 'stderr', string[]>} */
    this.lines = { stdout: [], stderr: [] };
    this.cursor = 0;
    this.live = false;
    this.ended = false;
    this.droppedLines = 0;
    /** @type {Record<'stdout' | 'stderr', HTMLPreElement | null>} */
    this.panes = { stdout: null, stderr: null };
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    this.busy = false;
  }

  /** Shows what there is; resolves once it is on the page, and keeps following a running trial. */
  async start() {
    await this.fetchAll(0);
    this.render();
    if (this.ended) return;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  async poll() {
    if (this.busy || document.visibilityState !== 'visible') return;
    this.busy = true;
    try {
      const before = this.cursor;
      const wasEnded = this.ended;
      await this.fetchAll(this.cursor);
      if (this.ended && !wasEnded) {
        clearInterval(this.timer);
        // The end report's tails are what an ended trial shows, as on a fresh load.
        this.lines = { stdout: [], stderr: [] };
        this.cursor = 0;
        await this.fetchAll(0);
        this.render();
      } else if (this.cursor !== before) {
        this.update();
      }
    } catch {
      // The controller may be restarting: ask again on the next tick.
    } finally {
      this.busy = false;
    }
  }

  /** Everything after `after`, in as many answers as it takes. */
  async fetchAll(/** @type {number} */ after) {
    for (;;) {
      /** @type {OutputAnswer} */
      const a = await getJson(`${this.url}?after=${after}`);
      for (const l of a.lines) this.lines[l.stream].push(l.text);
      for (const s of /** @type {const} */ (['stdout', 'stderr'])) if (this.lines[s].length > MAX_LINES) this.lines[s].splice(0, this.lines[s].length - MAX_LINES);
      if (a.lines.length > 0) after = a.lines[a.lines.length - 1].seq;
      this.cursor = after;
      this.live = !a.ended;
      this.ended = a.ended;
      this.droppedLines = a.droppedLines;
      if (!a.more) return;
    }
  }

  render() {
    this.box.dataset.live = this.live ? '1' : '0';
    const pane = (/** @type {'stdout' | 'stderr'} */ name) => {
      const lines = this.lines[name];
      const title = this.live ? `${name} · live` : `${name}${lines.length ? ` · last ${lines.length} line${lines.length === 1 ? '' : 's'}` : ''}`;
      // A running trial has both panes from the start, for the lines to come.
      const pre = lines.length || this.live ? h('pre', { class: 'output', attrs: { id: name }, text: lines.join('\n') }) : null;
      this.panes[name] = pre;
      return h(
        'div',
        { class: 'tail' },
        h('h3', { text: title }),
        pre ?? h('p', { class: 'empty', text: this.ended ? 'empty' : 'No output yet.' }),
      );
    };
    replace(this.box, pane('stdout'), pane('stderr'), this.droppedNote());
    for (const pre of Object.values(this.panes)) if (pre && this.live) pre.scrollTop = pre.scrollHeight;
  }

  /** New lines of a running trial: panes kept at their bottom stay there. */
  update() {
    for (const name of /** @type {const} */ (['stdout', 'stderr'])) {
      const pre = this.panes[name];
      if (!pre) continue;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      pre.textContent = this.lines[name].join('\n');
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    const note = this.box.querySelector('#output-dropped');
    const fresh = this.droppedNote();
    if (note && fresh) note.replaceWith(fresh);
    else if (!note && fresh) this.box.append(fresh);
  }

  droppedNote() {
    const n = this.droppedLines;
    if (n === 0) return null;
    return h('p', {
      class: 'warn',
      attrs: { id: 'output-dropped' },
      text: `${n} line${n === 1 ? ' was' : 's were'} not streamed live (over the agent's rate limit, or while NATS was slow); the tails kept at the end hold the last lines.`,
    });
  }
}
