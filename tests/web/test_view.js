// test_view.js - the live view in Debian's headless chromium (puppeteer-core, no browser
// download): the page loads, shows the live frame, a drag on the canvas registers an object
// that appears in the events with its mask drawn over the frame (checked on the screenshot's
// pixels), and "untrack" removes it. Exits 77 (skipped) without chromium or node_modules.
'use strict';
const {spawn} = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const CHROMIUM = process.env.VT_CHROMIUM || '/usr/bin/chromium';
function skip(why) { console.log('SKIP: ' + why); process.exit(77); }
if (!fs.existsSync(CHROMIUM)) skip(CHROMIUM + ' is missing (Debian package chromium)');
let puppeteer;
try { puppeteer = require('puppeteer-core'); } catch (e) { skip('no tests/web/node_modules: run ./dev setup'); }

const build = process.env.VT_BUILD_ROOT, src = process.env.VT_SOURCE_ROOT;
const TOKEN = 'view-token';
const deadline = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error('timeout: ' + what)), ms));
function freePort() {
  return new Promise(res => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}
async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timeout: ' + what);
    await new Promise(r => setTimeout(r, 100));
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtview-'));
  const video = path.join(dir, 'v.mp4');
  // A dark background with a bright square moving slowly: the object to track.
  const ff = spawn('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=0x202020:s=320x240:r=15:d=40',
    '-vf', "drawbox=x='60+t*2':y=80:w=60:h=60:color=white:t=fill", '-c:v', 'mpeg4', '-q:v', '3', video]);
  await new Promise((res, rej) => ff.on('exit', c => c === 0 ? res() : rej(new Error('ffmpeg failed'))));
  const [port, hport] = [await freePort(), await freePort()];
  const cfg = path.join(dir, 'vtrackd.json');
  fs.writeFileSync(cfg, JSON.stringify({
    listen: '127.0.0.1:' + port, model: 'lab', token: TOKEN,
    http: {listen: '127.0.0.1:' + hport, static_dir: path.join(src, 'web'), frame_rate: 10},
    streams: [{name: 'cam', url: video, pacing: 'camera'}]}));
  const d = spawn(path.join(build, 'daemon', 'vtrackd'), ['--config', cfg], {stdio: ['ignore', 'ignore', 'pipe']});
  let log = '';
  d.stderr.on('data', b => { log += b; });
  let browser;
  try {
    await waitFor(() => new Promise(r => { const s = net.connect(hport, '127.0.0.1', () => { s.end(); r(true); }).on('error', () => r(false)); }), 10000, 'http port');
    browser = await puppeteer.launch({executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']});
    const page = await browser.newPage();
    await page.setViewport({width: 800, height: 600});
    await page.goto(`http://127.0.0.1:${hport}/?token=${TOKEN}`);
    // the live frame is shown
    await page.waitForFunction(() => window.vtFrames > 2, {timeout: 15000});
    const box = await page.$eval('canvas', c => { const r = c.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height, cw: c.width}; });
    const s = box.w / box.cw;
    // drag a box around the square (it is near x=60..130, y=80..140 in the first seconds)
    await page.mouse.move(box.x + 55 * s, box.y + 75 * s);
    await page.mouse.down();
    await page.mouse.move(box.x + 100 * s, box.y + 110 * s, {steps: 4});
    await page.mouse.move(box.x + 150 * s, box.y + 145 * s, {steps: 4});
    await page.mouse.up();
    const id = await page.waitForFunction(() => {
      const e = window.vtEvents.find(e => e.type === 'object' && e.event === 'added');
      return e && e.object;
    }, {timeout: 15000}).then(h => h.jsonValue());
    // a frame drawn with its mask: the square is white, its mask tints it with the object's colour
    await page.waitForFunction(id => window.vtViews[0].objects.has(id) && window.vtViews[0].objects.get(id).mask, {timeout: 15000}, id);
    await new Promise(r => setTimeout(r, 300));
    const shot = await page.$eval('canvas', c => {
      const v = window.vtViews[0];
      const o = v.objects.get([...v.objects.keys()][0]);
      // a pixel inside the mask (the middle of its longest run)
      const [mh] = o.mask.size;
      let pos = 0, best = 0, at = 0;
      window.vtRleCounts(o.mask.counts).forEach((n, i) => { if (i % 2 && n > best) { best = n; at = pos + (n >> 1); } pos += n; });
      const px = c.getContext('2d').getImageData(Math.floor(at / mh), at % mh, 1, 1).data;
      const bg = c.getContext('2d').getImageData(5, 5, 1, 1).data;
      return {px: [...px], bg: [...bg], id: o.id};
    });
    const [r, g, b] = shot.px;
    // white under an untinted frame; the mask's colour makes the channels differ clearly
    if (Math.max(r, g, b) - Math.min(r, g, b) < 40) throw new Error('no mask drawn over the object: ' + shot.px);
    if (Math.max(...shot.bg.slice(0, 3)) > 80) throw new Error('background not the frame: ' + shot.bg);
    await page.screenshot({path: path.join(dir, 'view.png')});
    // untrack removes it
    await page.evaluate(id => document.querySelector(`button[data-object="${id}"]`).click(), id);
    await page.waitForFunction(id => window.vtEvents.some(e => e.type === 'object' && e.event === 'removed' && e.object === id), {timeout: 15000}, id);
    await page.waitForFunction(id => !window.vtViews[0].objects.has(id), {timeout: 15000}, id);
    console.log('ok: frames drawn', await page.evaluate(() => window.vtFrames), 'object', id);
  } finally {
    if (browser) await browser.close();
    d.kill('SIGTERM');
    await Promise.race([new Promise(r => d.on('exit', r)), deadline(10000, 'vtrackd exit')]).catch(() => d.kill('SIGKILL'));
    if (process.exitCode) console.error(log);
  }
}

main().then(() => process.exit(0), e => { console.error('FAIL: ' + e.message); process.exit(1); });
