// test_view.js - the live view in Debian's headless chromium (puppeteer-core, no browser
// download): the page loads, shows the live frame, a drag on the canvas registers an object
// that appears in the events with its mask drawn over the frame (checked on the screenshot's
// pixels), and "untrack" removes it; clicked polygon points (Escape cancels, a double-click
// closes) register an object whose box is the polygon's. Exits 77 (skipped) without chromium
// or node_modules.
'use strict';
const path = require('path');
const t = require('./lib');

const addedId = (page, n) => page.waitForFunction(n => {
  const e = window.vtEvents.filter(e => e.type === 'object' && e.event === 'added')[n];
  return e && e.object;
}, {timeout: 15000}, n).then(h => h.jsonValue());

t.run(async (dir, state) => {
  const video = await t.makeVideo(dir);
  const d = state.daemon = await t.startDaemon(dir, video);
  const browser = await t.launch();
  try {
    const {page, box} = await t.openView(browser, d.hport);
    const s = box.s, at = (x, y) => [box.x + x * s, box.y + y * s];
    // drag a box around the square (it is near x=60..130, y=80..140 in the first seconds)
    await page.mouse.move(...at(55, 75));
    await page.mouse.down();
    await page.mouse.move(...at(100, 110), {steps: 4});
    await page.mouse.move(...at(150, 145), {steps: 4});
    await page.mouse.up();
    const id = await addedId(page, 0);
    // a frame drawn with its mask: the square is white, its mask tints it with the object's colour
    await page.waitForFunction(id => window.vtViews[0].objects.has(id) && window.vtViews[0].objects.get(id).mask, {timeout: 15000}, id);
    await t.sleep(300);
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

    // polygon: two clicks and Escape register nothing
    await page.mouse.click(...at(20, 20));
    await page.mouse.click(...at(40, 20));
    if (!(await page.evaluate(() => window.vtViews[0].poly && window.vtViews[0].poly.length === 2)))
      throw new Error('clicks did not start a polygon');
    await page.keyboard.press('Escape');
    if (await page.evaluate(() => window.vtViews[0].poly)) throw new Error('Escape did not cancel the polygon');
    // the square's outline where it is now (x = 60 + 2 t), clicked point by point, closed by a
    // double-click on the last point
    const frame = await page.evaluate(() => window.vtViews[0].frame);
    const x0 = Math.round(60 + 2 * ((frame % 600) / 15) + 2);
    const pts = [[x0, 80], [x0 + 30, 78], [x0 + 60, 80], [x0 + 60, 140], [x0, 140]];
    for (const [x, y] of pts.slice(0, -1)) await page.mouse.click(...at(x, y));
    await page.mouse.click(...at(...pts[pts.length - 1]), {count: 2});
    const pid = await addedId(page, 1);
    const track = await page.evaluate(() => window.vtLastTrack);
    if (track.status !== 200) throw new Error('polygon track: ' + JSON.stringify(track));
    const bbox = await page.waitForFunction(id => { const o = window.vtViews[0].objects.get(id); return o && o.bbox; },
      {timeout: 15000, polling: 20}, pid).then(h => h.jsonValue());
    const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
    const want = [Math.min(...xs), Math.min(...ys), Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)];
    if (bbox.some((v, i) => Math.abs(v - want[i]) > 8))
      throw new Error(`polygon object's box ${JSON.stringify(bbox)}, its polygon's ${JSON.stringify(want)}`);
    console.log('ok: frames drawn', await page.evaluate(() => window.vtFrames), 'object', id,
      'polygon object', pid, 'box', JSON.stringify(bbox), 'polygon box', JSON.stringify(want));
  } finally {
    await browser.close();
    await d.stop();
  }
});
