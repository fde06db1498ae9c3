// webview_pages.js - N live views of vtrackd's web page in one headless chromium (Debian's,
// through puppeteer-core from tests/web/node_modules), for bench/webview.sh.
//
// usage: node bench/webview_pages.js URL N
// Prints "ready" once every page has drawn 3 frames; on SIGTERM prints
// {"pages":N,"seconds":S,"frames_per_s":[...],"skipped":[...],"lag_ms":{"p50","p95","max","n"},
// "lag_p95_ms":[...]} (frames drawn and frames the page replaced before drawing, per page, since
// "ready"; the lag of the frames drawn since then - the time a frame is on the canvas minus its
// server wallclock - over all pages, and each page's p95), closes the browser and exits.
'use strict';
const path = require('path');
const CHROMIUM = process.env.VT_CHROMIUM || '/usr/bin/chromium';
const puppeteer = require(require.resolve('puppeteer-core',
  {paths: [path.join(__dirname, '..', 'tests', 'web')]}));

async function main() {
  const [url, n] = [process.argv[2], parseInt(process.argv[3] || '5', 10)];
  const browser = await puppeteer.launch({executablePath: CHROMIUM, headless: true, handleSIGTERM: false,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      // every page is live: no throttling of pages the headless browser thinks are hidden
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows']});
  let done = false, start = null, t0 = 0;
  const pages = [];
  const finish = async () => {
    if (done) return;
    done = true;
    if (!start) { await browser.close(); process.exit(1); }
    const t = Date.now();
    const now = await Promise.all(pages.map(p => p.evaluate(() => [window.vtFrames, window.vtSkipped, window.vtLags])
      .catch(() => [NaN, NaN, []])));
    const s = (t - t0) / 1000;
    const q = (v, p) => v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : null;
    const lags = now.map(v => v[2].slice().sort((a, b) => a - b));
    const all = lags.flat().sort((a, b) => a - b);
    console.log(JSON.stringify({pages: n, seconds: +s.toFixed(2),
      frames_per_s: now.map((v, i) => +((v[0] - start[i][0]) / s).toFixed(2)),
      skipped: now.map((v, i) => v[1] - start[i][1]),
      lag_ms: {p50: q(all, 0.5), p95: q(all, 0.95), max: all.length ? all[all.length - 1] : null, n: all.length},
      lag_p95_ms: lags.map(v => q(v, 0.95))}));
    await browser.close();
    process.exit(0);
  };
  process.on('SIGTERM', finish);
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage();
    await page.setViewport({width: 1000, height: 700});
    await page.goto(url);
    pages.push(page);
  }
  try {
    await Promise.all(pages.map(p => p.waitForFunction(() => window.vtFrames > 2, {timeout: 90000, polling: 250})));
  } catch (e) {
    const got = await Promise.all(pages.map(p => p.evaluate(() => window.vtFrames).catch(() => 'closed')));
    throw new Error(`${e.message}; frames drawn per page: ${got.join(' ')}`);
  }
  // lags from here on only
  start = await Promise.all(pages.map(p => p.evaluate(() => { window.vtLags = []; return [window.vtFrames, window.vtSkipped]; })));
  t0 = Date.now();
  console.log('ready');
}

main().catch(e => { console.error('webview_pages: ' + e.message); process.exit(1); });
