// @ts-check
/**
 * The dashboard's entry point. Every page is the same shell (index.html); the path picks the
 * page: `/` sweeps, `/sweeps/ID` a sweep, `/sweeps/ID/trials/TID` a trial.
 */
import { h, replace } from './dom.js';
import { sweepsPage } from './sweeps-page.js';
import { sweepPage } from './sweep-page.js';
import { trialPage } from './trial-page.js';
import { stats } from './stats.js';

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);

/** @type {Promise<void>} */
let page;
if (parts.length === 0) page = sweepsPage(main);
else if (parts[0] === 'sweeps' && parts.length === 2) page = sweepPage(main, parts[1]);
else if (parts[0] === 'sweeps' && parts[2] === 'trials' && parts.length === 4) page = trialPage(main, parts[1], parts[3]);
else page = Promise.reject(new Error(`nothing at ${location.pathname}`));

page.then(
  () => {
    stats.readyMs = performance.now();
    document.body.dataset.ready = '1';
  },
  (err) => {
    replace(main, h('div', { class: 'error' }, h('strong', { text: 'Could not load this page: ' }), String(err?.message ?? err)));
    document.body.dataset.ready = 'error';
  },
);
