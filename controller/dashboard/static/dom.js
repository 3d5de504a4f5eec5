// @ts-check
/**
 * Building DOM without innerHTML: everything a training program or a config wrote (parameter
 * values, stdout, reasons) arrives as text nodes, so none of it can become markup.
 */

/**
 * @typedef {Node | string | number | null | undefined | false} Child
 * @typedef {{ class?: string, text?: string, title?: string, href?: string, attrs?: Record<string, string>, on?: Record<string, (e: any) => void> }} Props
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    if (props.text !== undefined) el.textContent = props.text;
    if (props.title) el.title = props.title;
    if (props.href && el instanceof HTMLAnchorElement) el.href = props.href;
    for (const [k, v] of Object.entries(props.attrs ?? {})) el.setAttribute(k, v);
    for (const [k, fn] of Object.entries(props.on ?? {})) el.addEventListener(k, fn);
  }
  append(el, children);
  return el;
}

/** @param {Element} el @param {Array<Child | Child[]>} children */
function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** @param {Element} el @param {...(Child | Child[])} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A state as a small badge: glyph and word, coloured by CSS. */
export function stateBadge(/** @type {string} */ state, /** @type {Record<string, string>} */ glyphs) {
  return h('span', { class: `badge state-${state}` }, `${glyphs[state] ?? ''} ${state}`.trim());
}

/** Fetch JSON from the dashboard's API; errors carry the server's message. */
export async function getJson(/** @type {string} */ url) {
  const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      message = (await res.json()).error ?? message;
    } catch {
      // Not JSON: the status says enough.
    }
    throw new Error(message);
  }
  return res.json();
}

/**
 * Calls `fn` at most once per `ms`, the last call winning; calls in between are folded into one.
 * @param {() => void} fn
 * @param {number} ms
 */
export function throttle(fn, ms) {
  let last = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      last = Date.now();
      fn();
    }, Math.max(0, last + ms - Date.now()));
  };
}
