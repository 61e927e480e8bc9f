// Drives Immich's web app in Debian's Chromium through playwright-core (no browser download).
// Input: a JSON file (argv[2]) written by e2e/browser.py. Output: one JSON line on stdout with each step's
// outcome, seconds, screenshot name and details. Exit code 0 even when steps fail; Python judges.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const steps = [];
const result = { steps, searchResultIds: [], toastText: null, selectionIds: [], addonLog: [] };

async function step(name, screenshot, page, body) {
  const started = Date.now();
  const record = { name, ok: false, seconds: 0, screenshot: null, detail: '' };
  steps.push(record);
  try {
    const detail = await body();
    record.ok = true;
    record.detail = detail || '';
  } catch (error) {
    record.detail = String(error && error.message ? error.message : error).slice(0, 2000);
  }
  record.seconds = (Date.now() - started) / 1000;
  if (page && screenshot) {
    try {
      await page.screenshot({ path: path.join(input.screenshotDir, screenshot), fullPage: false });
      record.screenshot = screenshot;
    } catch (error) {
      record.detail += ` (screenshot failed: ${error.message})`;
    }
  }
  return record.ok;
}

// Opens the asset viewer's "More" menu and returns it once it is visibly open; a click that opened
// nothing (the viewer still settling) is retried.
async function openViewerMenu(page, attempts = 3, moreLabel = 'More') {
  const more = page.locator('#immich-asset-viewer').getByRole('button', { name: moreLabel }).first();
  for (let attempt = 1; attempt <= attempts; attempt++) {
    await more.waitFor({ state: 'visible' });
    await more.click();
    const menu = page.locator('[role="menu"]:visible').last();
    try {
      await menu.waitFor({ state: 'visible', timeout: 5000 });
      return menu;
    } catch {
      // Escape closes a half-open menu, but with none open it closes the viewer itself
      if (await page.locator('[role="menu"]').count()) await page.keyboard.press('Escape').catch(() => {});
    }
  }
  throw new Error(`the viewer's More menu did not open after ${attempts} clicks`);
}

// Clicks `label` in the viewer menu and proves the click had its effect: the asset-jobs request was sent
// and accepted. A click that sent nothing is retried with the menu opened again.
async function runViewerMenuItem(page, label, attempts = 3) {
  const misses = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const menu = await openViewerMenu(page);
    const item = menu.getByRole('menuitem', { name: label, exact: true });
    await item.waitFor({ state: 'visible', timeout: 10000 });
    const sent = page
      .waitForResponse((r) => r.url().endsWith('/api/assets/jobs') && r.request().method() === 'POST', { timeout: 8000 })
      .catch(() => null);
    await item.click();
    const response = await sent;
    if (response) {
      if (!response.ok()) throw new Error(`POST /api/assets/jobs answered HTTP ${response.status()}`);
      return { attempt, misses };
    }
    misses.push(`click ${attempt} queued nothing`);
    await page.keyboard.press('Escape').catch(() => {});
  }
  throw new Error(`"${label}" never queued its job: ${misses.join('; ')}`);
}

async function main() {
  const context = await chromium.launchPersistentContext(input.userDataDir, {
    executablePath: input.executablePath,
    headless: true,
    args: input.args,
    viewport: { width: 1440, height: 900 },
    locale: input.locale || 'en-US',
    timeout: 60000,
  });
  context.setDefaultTimeout(input.timeoutMs || 30000);
  const page = context.pages()[0] || (await context.newPage());
  const base = input.baseUrl;
  try {
    const loggedIn = await step('browser: log in', '01-login.png', page, async () => {
      await page.goto(`${base}/auth/login`);
      await page.getByLabel('Email').fill(input.email);
      await page.getByLabel('Password').fill(input.password);
      await page.getByRole('button', { name: 'Login' }).click();
      await page.waitForURL(/\/photos/, { timeout: 60000 });
      await page.locator('[data-asset]').first().waitFor();
      return `landed on ${new URL(page.url()).pathname}`;
    });
    if (!loggedIn) return;

    const opened = await step('browser: open asset', '02-asset-viewer.png', page, async () => {
      await page.goto(`${base}/photos/${input.assetId}`);
      const viewer = page.locator('#immich-asset-viewer');
      await viewer.waitFor();
      // the app is ready when the photo itself has loaded and the network has gone quiet
      // (before v2.2 the viewer's first img is a hidden, blurred backdrop: wait for one that shows)
      await viewer.locator('img:visible').first().waitFor({ state: 'visible' });
      await page.waitForLoadState('networkidle');
      return `viewer open for ${input.assetId}`;
    });

    if (opened && input.menuItem) {
      await step(`browser: "${input.menuItem}" from the viewer menu`, '03-refresh-ocr-toast.png', page, async () => {
        const { attempt, misses } = await runViewerMenuItem(page, input.menuItem);
        const toast = page.getByText(input.toastText, { exact: false }).first();
        await toast.waitFor({ timeout: 15000 });
        result.toastText = (await toast.textContent()) || '';
        const retried = misses.length ? ` (after ${misses.join('; ')})` : '';
        return `job queued on click ${attempt}${retried}; toast: ${result.toastText}`;
      });
    }

    await step(`browser: search "${input.searchQuery}"`, '04-search-results.png', page, async () => {
      await page.goto(`${base}/photos`);
      const bar = page.locator('#main-search-bar');
      await bar.click();
      await bar.fill(input.searchQuery);
      await bar.press('Enter');
      await page.waitForURL(/\/search/, { timeout: 30000 });
      const noResults = page.getByText('No results', { exact: true });
      await page.locator('[data-asset]').first().or(noResults).first().waitFor({ timeout: 60000 });
      await page.waitForLoadState('networkidle');
      if (await noResults.isVisible()) throw new Error('the search page shows "No results"');
      const ids = await page.locator('[data-asset]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-asset')));
      result.searchResultIds = [...new Set(ids.filter(Boolean))];
      return `${result.searchResultIds.length} results`;
    });
    if (input.addon) await addonSteps(page, base, input.addon);
  } finally {
    await context.close();
  }
}

// The gateway's add-on to the official web app: its menu items in the viewer and on a selection, their
// toasts, its Simplified Chinese labels, and a page whose structure it does not know.
async function addonSteps(page, base, addon) {
  page.on('console', (message) => {
    if (message.text().includes('immich-aio add-on')) result.addonLog.push(message.text());
  });
  const viewer = async () => {
    await page.goto(`${base}/photos/${input.assetId}`);
    const shown = page.locator('#immich-asset-viewer');
    await shown.waitFor();
    await shown.locator('img:visible').first().waitFor({ state: 'visible' });
    await page.waitForLoadState('networkidle');
  };
  const toastOf = async (text) => {
    const toast = page.locator('[data-immich-aio="toast"]').getByText(text, { exact: true });
    await toast.waitFor({ timeout: 15000 });
    return text;
  };
  for (const [label, toastText, shot] of [
    [addon.refreshOcr, addon.refreshingOcr, '05-addon-viewer-refresh-ocr.png'],
    [addon.refreshSmart, addon.refreshingSmart, '06-addon-viewer-refresh-smart-search.png'],
  ]) {
    await step(`browser: add-on "${label}" from the viewer menu`, shot, page, async () => {
      await viewer();
      const { attempt } = await runViewerMenuItem(page, label);
      return `job queued on click ${attempt}; toast: ${await toastOf(toastText)}`;
    });
  }
  await step(`browser: add-on "${addon.refreshOcr}" on a selection of two`, '07-addon-selection.png', page, async () => {
    await page.locator('[data-immich-aio="toast"]').waitFor({ state: 'detached', timeout: 15000 }).catch(() => {});
    await page.goto(`${base}/photos`);
    const thumbs = page.locator('[data-asset]');
    await thumbs.nth(1).waitFor();
    for (const i of [0, 1]) {
      await thumbs.nth(i).hover();
      await thumbs.nth(i).getByRole('checkbox').click();
    }
    result.selectionIds = await page.locator('[data-asset][data-selected]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-asset')));
    if (result.selectionIds.length !== 2) throw new Error(`selected ${result.selectionIds.length} assets`);
    await page.getByRole('button', { name: addon.selectionMenu, exact: true }).click();
    const item = page.locator('[role="menu"]:visible').last().getByRole('menuitem', { name: addon.refreshOcr, exact: true });
    const sent = page
      .waitForResponse((r) => r.url().endsWith('/api/assets/jobs') && r.request().method() === 'POST', { timeout: 15000 })
      .catch(() => null);
    await item.click();
    const response = await sent;
    if (!response) throw new Error(`the click sent no job; add-on log: ${result.addonLog.join(' | ') || 'empty'}`);
    if (!response.ok()) throw new Error(`POST /api/assets/jobs answered HTTP ${response.status()}`);
    return `queued for ${result.selectionIds.join(', ')}; toast: ${await toastOf(addon.refreshingOcr)}`;
  });
  await step('browser: the add-on in Simplified Chinese', '08-addon-zh-hans.png', page, async () => {
    await page.evaluate((code) => localStorage.setItem('lang', code), addon.languageHans);
    await viewer();
    const menu = await openViewerMenu(page, 3, addon.immichMoreHans);
    // Immich's own items in Simplified Chinese too: the whole page speaks the user's language
    await menu.getByRole('menuitem', { name: addon.immichRefreshFacesHans, exact: true }).waitFor();
    await menu.getByRole('menuitem', { name: addon.refreshOcrHans, exact: true }).waitFor();
    await menu.getByRole('menuitem', { name: addon.refreshSmartHans, exact: true }).waitFor();
    await page.waitForTimeout(500); // the menu's opening transition, for the screenshot
    return `menu shows ${addon.refreshOcrHans} and ${addon.refreshSmartHans}`;
  });
  await page.evaluate(() => localStorage.setItem('lang', 'en')).catch(() => {});
  await step('browser: the add-on on a page it does not know', '09-addon-unknown-page.png', page, async () => {
    const stub = `${base}/immich-aio-e2e-unknown-page`;
    await page.route(stub, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: '<!doctype html><html><head><script src="/immich-aio/addon.js"></script></head><body>' +
          '<div id="immich-asset-viewer"><div role="menu"><div role="menuitem">Download</div></div></div>' +
          '<button id="works" onclick="this.textContent = \'clicked\'">click</button></body></html>',
      }),
    );
    const before = result.addonLog.length;
    await page.goto(stub);
    await page.locator('#works').click();
    await page.getByText('clicked', { exact: true }).waitFor();
    await page.waitForTimeout(1000);
    const added = await page.locator('[data-immich-aio]').count();
    const logged = result.addonLog.length - before;
    if (added !== 0) throw new Error(`the add-on added ${added} elements to an unknown page`);
    if (logged !== 1) throw new Error(`the add-on logged ${logged} times (expected once)`);
    return `nothing added, the page still works, logged once: ${result.addonLog[result.addonLog.length - 1]}`;
  });
}

main()
  .catch((error) => steps.push({ name: 'browser: launch', ok: false, seconds: 0, screenshot: null, detail: String(error) }))
  .finally(() => process.stdout.write(JSON.stringify(result) + '\n'));
