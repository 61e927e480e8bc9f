// immich-aio's add-on to the official Immich web app, added to its pages by `immich-aio gateway`.
// It puts "Refresh OCR" and "Refresh smart search" beside Immich's own refresh items (the asset viewer's
// menu and the multi-select menu) and the ocr: hint into the search bar. It only ever adds to a structure it
// recognises; on any other page it adds nothing and says so once in the console. It never throws.
(() => {
  'use strict';
  const config = window.__IMMICH_AIO_ADDON__;
  if (!config) return;
  const MARK = 'data-immich-aio';
  const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
  let warned = false;

  const warnOnce = (why) => {
    if (warned) return;
    warned = true;
    console.info(`immich-aio add-on: ${why}; it adds nothing here.`);
  };

  const language = () => {
    let code = '';
    try {
      // Immich keeps the user's language as a plain BCP 47 string (e.g. zh-Hans)
      code = (localStorage.getItem('lang') || '').replace(/^"|"$/g, '');
    } catch {
      code = '';
    }
    code = (code || document.documentElement.lang || navigator.language || 'en').toLowerCase().replace('_', '-');
    if (/^zh-(hant|tw|hk|mo)/.test(code)) return 'zh_Hant';
    if (code.startsWith('zh')) return 'zh_Hans';
    return 'en';
  };
  const text = (key) => (config.strings[language()] || config.strings.en)[key] || config.strings.en[key];

  const toast = (message) => {
    const box = document.createElement('div');
    box.setAttribute(MARK, 'toast');
    box.setAttribute('role', 'status');
    box.textContent = message;
    Object.assign(box.style, {
      position: 'fixed', top: '1rem', right: '1rem', zIndex: '100000', padding: '0.75rem 1rem',
      borderRadius: '0.75rem', background: 'rgb(66 80 175)', color: 'white', fontSize: '0.875rem',
      boxShadow: '0 4px 12px rgb(0 0 0 / 0.25)', maxWidth: '24rem', pointerEvents: 'none',
    });
    document.body.appendChild(box);
    setTimeout(() => box.remove(), 4000);
  };

  // The assets a menu acts on: the open viewer's asset, else the selected thumbnails.
  const chosenAssets = () => {
    if (document.querySelector('#immich-asset-viewer')) {
      const ids = location.pathname.match(UUID);
      return ids ? [ids[ids.length - 1]] : [];
    }
    return [...document.querySelectorAll('[data-asset][data-selected]')].map((el) => el.getAttribute('data-asset'));
  };

  // Immich's menus close when their own button is clicked again (the button that labels the menu)
  const closeMenu = (menu) => {
    const button = document.getElementById(menu.getAttribute('aria-labelledby') || '');
    if (button && menu.isConnected) button.click();
  };

  const run = async (job, label, menu) => {
    const assetIds = chosenAssets();
    closeMenu(menu);
    if (assetIds.length === 0) {
      console.info(`immich-aio add-on: ${job}: no asset is open or selected`);
      return;
    }
    try {
      const response = await fetch('/api/assets/jobs', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ assetIds, name: job }),
      });
      if (response.ok) {
        toast(label);
      } else {
        const body = await response.json().catch(() => ({}));
        toast(`${text(job === 'refresh-ocr' ? 'refresh_ocr' : 'refresh_smart_search')}: ${body.message || response.status}`);
      }
    } catch (error) {
      toast(String(error));
    }
  };

  const labelOf = (item) => (item.textContent || '').trim();

  // Immich's own refresh items in a menu, by their labels in the three languages the add-on speaks.
  const anchorItems = (menu) =>
    [...menu.querySelectorAll('[role="menuitem"]')].filter((item) => config.anchors.includes(labelOf(item)));

  const withLabel = (template, label) => {
    const item = template.cloneNode(true);
    item.setAttribute(MARK, 'item');
    item.removeAttribute('id');
    const walker = document.createTreeWalker(item, NodeFilter.SHOW_TEXT);
    let node = walker.nextNode();
    let replaced = false;
    while (node) {
      if (!replaced && node.nodeValue.trim()) {
        node.nodeValue = label;
        replaced = true;
      } else if (node.nodeValue.trim()) {
        node.nodeValue = '';
      }
      node = walker.nextNode();
    }
    if (!replaced) item.appendChild(document.createTextNode(label));
    if (item.hasAttribute('aria-label')) item.setAttribute('aria-label', label);
    return item;
  };

  const extendMenu = (menu) => {
    if (menu.querySelector(`[${MARK}="item"]`)) return;
    const anchors = anchorItems(menu);
    if (anchors.length === 0) {
      if (document.querySelector('#immich-asset-viewer') && menu.closest('#immich-asset-viewer')) {
        warnOnce("the asset viewer's menu has none of Immich's refresh items");
      }
      return;
    }
    const last = anchors[anchors.length - 1];
    const items = [
      withLabel(last, text('refresh_ocr')),
      withLabel(last, text('refresh_smart_search')),
    ];
    const jobs = [
      ['refresh-ocr', text('refreshing_ocr')],
      ['refresh-smart-search', text('refreshing_smart_search')],
    ];
    items.forEach((item, i) => {
      const handler = (event) => {
        event.preventDefault();
        event.stopImmediatePropagation();
        run(jobs[i][0], jobs[i][1], menu);
      };
      item.addEventListener('click', handler, true);
      item.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') handler(event);
      }, true);
    });
    last.after(...items);
  };

  const hintSearchBar = () => {
    const bar = document.querySelector('#main-search-bar');
    if (!bar) return false;
    const hint = text('search_your_photos_or_text');
    // Svelte may render the placeholder again on its own updates: put the hint back each time
    if (bar.getAttribute('placeholder') !== hint) bar.setAttribute('placeholder', hint);
    if (!bar.getAttribute(MARK)) {
      bar.setAttribute(MARK, 'hint');
      bar.setAttribute('title', text('search_ocr_prefix_hint'));
    }
    return true;
  };

  const scan = () => {
    try {
      hintSearchBar();
      document.querySelectorAll('[role="menu"]').forEach(extendMenu);
    } catch (error) {
      warnOnce(`unexpected page (${error})`);
    }
  };

  const start = () => {
    try {
      new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
      scan();
      // the app has rendered its shell by then; a page without Immich's search bar is not one we know
      setTimeout(() => {
        if (!document.querySelector('#main-search-bar') && !location.pathname.startsWith('/auth')) {
          warnOnce('no search bar of the Immich web app was found');
        }
      }, 15000);
    } catch (error) {
      warnOnce(`unexpected page (${error})`);
    }
  };

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true });
})();
