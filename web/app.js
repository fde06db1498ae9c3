// vtrackd's live view: one WebSocket per stream carries its frames (binary: 4-byte big-endian
// length, the frame event with masks as JSON, then the JPEG of that same frame) and its events
// (text). Drawing waits for the image to decode and always uses the newest frame: frames that
// arrive meanwhile replace the pending one, so a slow browser skips frames, never lags.
// Each frame drawn records its lag: the time it is on the canvas minus its `wallclock` (the
// server's clock when the frame arrived there; same machine or synchronised clocks), shown
// under the canvas and kept in window.vtLags (window.vtLagStats() summarises it).
'use strict';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const COLORS = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                [145, 30, 180], [70, 240, 240], [240, 50, 230]];

function api(method, path, body) {
  const headers = token ? {Authorization: 'Bearer ' + token} : {};
  if (body) headers['Content-Type'] = 'application/json';
  return fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined})
    .then(r => r.json().then(j => ({status: r.status, body: j})));
}

// COCO's compressed counts string (pycocotools' rleToString) to run lengths.
function rleCounts(s) {
  if (Array.isArray(s)) return s;
  const cnts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (cnts.length > 2) x += cnts[cnts.length - 2];
    cnts.push(x);
  }
  return cnts;
}
window.vtRleCounts = rleCounts;

// COCO RLE (column-major counts starting with background) into an RGBA overlay.
function paintMask(img, rle, color) {
  const [h, w] = rle.size;
  const counts = rleCounts(rle.counts);
  const d = img.data;
  let pos = 0, on = false;
  for (const n of counts) {
    if (on) {
      for (let k = pos; k < pos + n; k++) {
        const x = Math.floor(k / h), y = k % h;
        const o = 4 * (y * w + x);
        d[o] = color[0]; d[o + 1] = color[1]; d[o + 2] = color[2]; d[o + 3] = 110;
      }
    }
    pos += n;
    on = !on;
  }
}

class View {
  constructor(name) {
    this.name = name;
    this.el = document.createElement('div');
    this.el.className = 'stream';
    this.el.dataset.stream = name;
    this.title = document.createElement('h2');
    this.title.textContent = name;
    this.canvas = document.createElement('canvas');
    this.canvas.width = 320; this.canvas.height = 240;
    this.stat = document.createElement('div');
    this.stat.className = 'stat';
    this.list = document.createElement('ul');
    this.el.append(this.title, this.canvas, this.stat, this.list);
    document.getElementById('streams').append(this.el);
    this.ctx = this.canvas.getContext('2d');
    this.pending = null;   // newest frame not drawn yet
    this.drawing = false;
    this.frame = -1;       // index of the frame on screen
    this.drawn = 0;        // frames drawn
    this.skipped = 0;      // frames received and replaced by a newer one before being drawn
    this.gap = 0;          // source frames between two drawn ones (skipped here or by the server)
    this.lag = 0;          // ms, of the last frame drawn
    this.objects = new Map();
    this.drag = null;
    this.poly = null;      // points of a polygon being clicked
    this.setupDrag();
    this.connect();
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = 'stream=' + encodeURIComponent(this.name) + (token ? '&token=' + encodeURIComponent(token) : '');
    this.ws = new WebSocket(proto + '//' + location.host + '/ws?' + q);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = ev => this.onMessage(ev.data);
    this.ws.onclose = () => setTimeout(() => this.connect(), 1000);
  }

  onMessage(data) {
    if (typeof data === 'string') {
      const e = JSON.parse(data);
      window.vtEvents.push(e);
      if (e.type === 'object' && e.event === 'removed') this.objects.delete(e.object);
      this.renderList();
      return;
    }
    const dv = new DataView(data);
    const n = dv.getUint32(0);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, n)));
    const jpeg = new Blob([new Uint8Array(data, 4 + n)], {type: 'image/jpeg'});
    if (this.pending) {
      window.vtSkipped++;
      this.skipped++;
    }
    this.pending = {meta, jpeg};
    this.pump();
  }

  async pump() {
    if (this.drawing || !this.pending) return;
    this.drawing = true;
    const {meta, jpeg} = this.pending;
    this.pending = null;
    try {
      const bmp = await createImageBitmap(jpeg);
      await this.draw(bmp, meta);
      bmp.close();
    } finally {
      this.drawing = false;
      this.pump();
    }
  }

  async draw(bmp, meta) {
    const c = this.canvas, ctx = this.ctx;
    const objs = meta.objects || [];
    let ov = null;
    if (objs.some(o => o.mask)) {
      const img = new ImageData(bmp.width, bmp.height);
      objs.forEach(o => { if (o.mask) paintMask(img, o.mask, COLORS[o.id % COLORS.length]); });
      ov = await createImageBitmap(img);
    }
    if (c.width !== bmp.width || c.height !== bmp.height) {
      c.width = bmp.width; c.height = bmp.height;
    }
    ctx.drawImage(bmp, 0, 0);
    if (ov) {
      ctx.drawImage(ov, 0, 0);
      ov.close();
    }
    this.drawBoxes(objs);
    this.noteDrawn(meta);
    this.frame = meta.frame;
    c.dataset.frame = meta.frame;
    this.objects = new Map(objs.map(o => [o.id, o]));
    this.renderList();
    window.vtFrames++;
  }

  // Lag and skipped frames of the frame just drawn.
  noteDrawn(meta) {
    const t = Date.parse(meta.wallclock);
    if (!Number.isNaN(t)) {
      this.lag = Date.now() - t;
      window.vtLags.push(this.lag);
      if (window.vtLags.length > 20000) window.vtLags.splice(0, 10000);
    }
    if (this.frame >= 0 && meta.frame > this.frame) this.gap += meta.frame - this.frame - 1;
    this.drawn++;
    this.stat.textContent = `lag ${this.lag} ms, ${this.drawn} drawn, ${this.skipped} skipped here, ` +
      `${this.gap} not shown`;
  }

  drawBoxes(objs) {
    const ctx = this.ctx;
    ctx.lineWidth = 2;
    ctx.font = '12px sans-serif';
    for (const o of objs) {
      if (!o.bbox) continue;
      const col = COLORS[o.id % COLORS.length];
      ctx.strokeStyle = ctx.fillStyle = `rgb(${col})`;
      const [x, y, w, h] = o.bbox;
      ctx.strokeRect(x, y, w, h);
      ctx.fillText(`${o.id}${o.label ? ' ' + o.label : ''} ${o.state}`, x + 2, y > 12 ? y - 3 : y + 12);
    }
    ctx.strokeStyle = ctx.fillStyle = '#fff';
    if (this.drag && this.drag.moved && !this.poly) {
      const d = this.drag;
      ctx.strokeRect(d.x0, d.y0, d.x1 - d.x0, d.y1 - d.y0);
    }
    if (this.poly) {
      ctx.beginPath();
      this.poly.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      this.poly.forEach(([x, y]) => ctx.fillRect(x - 2, y - 2, 4, 4));
    }
  }

  renderList() {
    this.list.replaceChildren(...[...this.objects.values()].map(o => {
      const li = document.createElement('li');
      li.textContent = `#${o.id} ${o.label || ''} ${o.state}`;
      const b = document.createElement('button');
      b.textContent = 'untrack';
      b.dataset.object = o.id;
      b.onclick = () => api('DELETE', `/api/streams/${encodeURIComponent(this.name)}/objects/${o.id}`);
      li.append(b);
      return li;
    }));
  }

  // Drag a box, or click the points of a polygon (double-click or Enter closes it, Escape
  // cancels it): either registers an object (POST .../objects, the protocol's `track`).
  setupDrag() {
    const pos = ev => {
      const r = this.canvas.getBoundingClientRect();
      return [(ev.clientX - r.left) * this.canvas.width / r.width,
              (ev.clientY - r.top) * this.canvas.height / r.height];
    };
    this.canvas.addEventListener('pointerdown', ev => {
      const [x, y] = pos(ev);
      this.drag = {x0: x, y0: y, x1: x, y1: y, moved: false};
    });
    this.canvas.addEventListener('pointermove', ev => {
      const d = this.drag;
      if (!d) return;
      [d.x1, d.y1] = pos(ev);
      if (Math.abs(d.x1 - d.x0) >= 3 || Math.abs(d.y1 - d.y0) >= 3) d.moved = true;
    });
    this.canvas.addEventListener('pointerup', () => {
      const d = this.drag;
      this.drag = null;
      if (!d) return;
      if (this.poly || !d.moved) {
        // a click: one more point (the two clicks of a double-click land on the same spot)
        this.poly = this.poly || [];
        const last = this.poly[this.poly.length - 1];
        if (!last || Math.abs(last[0] - d.x0) >= 3 || Math.abs(last[1] - d.y0) >= 3)
          this.poly.push([Math.round(d.x0), Math.round(d.y0)]);
        if (this.poly.length === 1024) this.closePolygon();
        return;
      }
      const x = Math.min(d.x0, d.x1), y = Math.min(d.y0, d.y1);
      const w = Math.abs(d.x1 - d.x0), h = Math.abs(d.y1 - d.y0);
      if (w < 3 || h < 3) return;
      this.register({box: [Math.round(x), Math.round(y), Math.round(w), Math.round(h)]});
    });
    this.canvas.addEventListener('dblclick', ev => {
      ev.preventDefault();
      this.closePolygon();
    });
    document.addEventListener('keydown', ev => {
      if (!this.poly) return;
      if (ev.key === 'Enter') this.closePolygon();
      else if (ev.key === 'Escape') this.poly = null;
    });
  }

  closePolygon() {
    const pts = this.poly;
    this.poly = null;
    if (pts && pts.length >= 3) this.register({polygon: pts});
  }

  register(shape) {
    api('POST', `/api/streams/${encodeURIComponent(this.name)}/objects`, shape)
      .then(r => { window.vtLastTrack = r; });
  }
}

window.vtEvents = [];
window.vtFrames = 0;
window.vtSkipped = 0;
window.vtLags = [];    // ms, one per frame drawn (the oldest are dropped past 20000)
// {n, p50, p95, max} of the lags recorded since index `from` of window.vtLags.
window.vtLagStats = (from = 0) => {
  const v = window.vtLags.slice(from).sort((a, b) => a - b);
  const q = p => v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : null;
  return {n: v.length, p50: q(0.5), p95: q(0.95), max: v.length ? v[v.length - 1] : null};
};

async function refreshStats() {
  const r = await api('GET', '/api/stats');
  document.getElementById('stats').textContent = JSON.stringify(r.body, null, 1);
}

async function main() {
  const r = await api('GET', '/api/streams');
  const st = document.getElementById('status');
  if (r.status !== 200) {
    st.textContent = 'error ' + r.status + ': ' + (r.body.message || '') + ' (open this page with ?token=...)';
    return;
  }
  st.textContent = 'live';
  window.vtViews = r.body.streams.map(s => new View(s.stream));
  refreshStats();
  setInterval(refreshStats, 2000);
}

main();
