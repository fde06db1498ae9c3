// lib.js - what the live-view tests share: skipping (exit 77) without chromium or node_modules,
// a test video, a vtrackd with the HTTP API on loopback ports, a headless chromium.
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
const sleep = ms => new Promise(r => setTimeout(r, ms));
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
    await sleep(100);
  }
}

// A dark background with a bright square moving slowly (x = 60 + 2t, y = 80, 60x60): the object
// to track. fps frames a second, `seconds` long.
async function makeVideo(dir, fps = 15, seconds = 40) {
  const video = path.join(dir, 'v.mp4');
  const ff = spawn('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `color=c=0x202020:s=320x240:r=${fps}:d=${seconds}`,
    '-vf', "drawbox=x='60+t*2':y=80:w=60:h=60:color=white:t=fill", '-c:v', 'mpeg4', '-q:v', '3', video]);
  await new Promise((res, rej) => ff.on('exit', c => c === 0 ? res() : rej(new Error('ffmpeg failed'))));
  return video;
}

// vtrackd with the token, the HTTP API (http: extra fields) and stream `cam` reading `video` at
// its own rate. Returns {hport, proc, log(), stop()}.
async function startDaemon(dir, video, http = {}) {
  const [port, hport] = [await freePort(), await freePort()];
  const cfg = path.join(dir, 'vtrackd.json');
  fs.writeFileSync(cfg, JSON.stringify({
    listen: '127.0.0.1:' + port, model: 'lab', token: TOKEN,
    http: {listen: '127.0.0.1:' + hport, static_dir: path.join(src, 'web'), frame_rate: 10, ...http},
    streams: [{name: 'cam', url: video, pacing: 'camera'}]}));
  const proc = spawn(path.join(build, 'daemon', 'vtrackd'), ['--config', cfg], {stdio: ['ignore', 'ignore', 'pipe']});
  let log = '';
  proc.stderr.on('data', b => { log += b; });
  const exited = new Promise(r => proc.on('exit', r));
  const d = {hport, proc, log: () => log,
    stop: async () => {
      proc.kill('SIGTERM');
      await Promise.race([exited, deadline(10000, 'vtrackd exit')]).catch(() => proc.kill('SIGKILL'));
    }};
  try {
    await waitFor(() => new Promise(r => { const s = net.connect(hport, '127.0.0.1', () => { s.end(); r(true); }).on('error', () => r(false)); }), 10000, 'http port');
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}

function launch() {
  return puppeteer.launch({executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']});
}

// The page, showing frames; its canvas' place in CSS pixels and its scale.
async function openView(browser, hport) {
  const page = await browser.newPage();
  await page.setViewport({width: 800, height: 600});
  await page.goto(`http://127.0.0.1:${hport}/?token=${TOKEN}`);
  await page.waitForFunction(() => window.vtFrames > 2, {timeout: 15000});
  const box = await page.$eval('canvas', c => { const r = c.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height, cw: c.width}; });
  box.s = box.w / box.cw;
  return {page, box};
}

// Run the test body with a temporary directory, removed at exit; exit 0, or 1 with the
// daemon's log.
function run(body) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtview-'));
  process.on('exit', () => fs.rmSync(dir, {recursive: true, force: true}));
  const state = {};
  body(dir, state).then(() => process.exit(0), e => {
    console.error('FAIL: ' + e.message);
    if (state.daemon) console.error(state.daemon.log());
    process.exit(1);
  });
}

module.exports = {TOKEN, sleep, deadline, freePort, waitFor, makeVideo, startDaemon, launch, openView, run};
