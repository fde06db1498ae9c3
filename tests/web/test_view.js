// test_view.js - the live view in Debian's headless chromium (puppeteer-core, no browser
// download): the page loads, shows the live frame, a drag on the canvas registers an object
// that appears in the events with its mask drawn over the frame (checked on the screenshot's
// pixels), and "untrack" removes it. Exits 77 (skipped) without chromium or node_modules.
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

    console.log('ok: frames drawn', await page.evaluate(() => window.vtFrames), 'object', id);
  } finally {
    await browser.close();
    await d.stop();
  }
});
