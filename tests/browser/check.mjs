// Opens an HTML report in headless Chromium with the network off and
// prints, as JSON, what a person looking at it would notice: console
// errors, requests that tried to leave the file, each chart's size and
// what is drawn in it, the tables, and whether the page scrolls sideways.
// Usage: node check.mjs REPORT.html SCREENSHOT.png
import { chromium } from 'playwright-core';

const [file, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const context = await browser.newContext({ offline: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
  await page.goto('file://' + file, { waitUntil: 'load' });
  const seen = await page.evaluate(() => {
    const charts = [...document.querySelectorAll('svg.chart')].map((svg) => {
      const box = svg.getBoundingClientRect();
      const drawn = [...svg.querySelectorAll('polyline')]
        .map((p) => p.getBBox())
        .filter((b) => b.width > 0 || b.height > 0).length;
      return {
        id: svg.dataset.chart,
        width: box.width,
        height: box.height,
        lines: svg.querySelectorAll('g.line').length,
        drawn,
        dots: svg.querySelectorAll('circle').length,
        bands: svg.querySelectorAll('rect.band').length,
        markers: svg.querySelectorAll('line.marker').length,
        dashed: svg.querySelectorAll('polyline[stroke-dasharray]').length,
        noData: [...svg.querySelectorAll('text')].some((t) => t.textContent === 'no data'),
      };
    });
    const tables = Object.fromEntries([...document.querySelectorAll('table')].map((t) => [t.id, t.rows.length]));
    return {
      title: document.title,
      verdict: document.querySelector('#verdict')?.textContent ?? null,
      charts,
      tables,
      scrollsSideways: document.documentElement.scrollWidth > window.innerWidth,
    };
  });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ errors, requests, ...seen }));
} finally {
  await browser.close();
}
