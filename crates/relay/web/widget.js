// kefu chat widget. Paste into any page:
//   <script src="https://SUPPORT-HOST/widget.js" async></script>
// Options, as data- attributes on that script tag:
//   data-position="right|left"  data-color="#0b7a75"
//   data-greeting="Hi! Ask us anything."  data-lang="en|zh-CN"
// The chat itself runs in an iframe on the relay's origin, so the host
// page's styles and scripts cannot break it, nor it them.
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script || window.__kefuWidget) return;
  window.__kefuWidget = true;

  const relay = new URL(script.src).origin;
  const options = script.dataset;
  const side = options.position === 'left' ? 'left' : 'right';
  const color = /^#[0-9a-fA-F]{3,8}$|^[a-zA-Z]+$/.test(options.color || '') ? options.color : '#0b7a75';
  const zh = (options.lang || navigator.language || '').toLowerCase().startsWith('zh');
  const labels = zh ? { open: '打开在线客服', close: '关闭在线客服', title: '在线客服' }
    : { open: 'Open chat', close: 'Close chat', title: 'Chat' };
  // Once a visitor has chatted, later pages load the chat at once so the
  // bubble can count unread replies; before that, nothing loads until asked.
  const ACTIVE_KEY = 'kefu.widget.active';

  const host = document.createElement('div');
  host.id = 'kefu-widget';
  const root = host.attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = `
    :host { all: initial; }
    .bubble {
      position: fixed; bottom: 20px; ${side}: 20px; z-index: 2147483646;
      width: 56px; height: 56px; border-radius: 50%; border: 0; cursor: pointer;
      background: ${color}; color: #fff; box-shadow: 0 4px 14px rgba(0,0,0,.25);
      display: flex; align-items: center; justify-content: center;
    }
    .bubble:focus-visible { outline: 3px solid #f5a524; outline-offset: 3px; }
    .badge {
      position: absolute; top: -4px; ${side === 'right' ? 'left' : 'right'}: -4px; min-width: 20px; height: 20px;
      border-radius: 10px; background: #d92d20; color: #fff; font: 600 12px/20px system-ui, sans-serif;
      padding: 0 5px; text-align: center;
    }
    .badge[hidden] { display: none; }
    .panel {
      position: fixed; bottom: 88px; ${side}: 20px; z-index: 2147483647;
      width: 370px; height: 580px; max-width: calc(100vw - 40px); max-height: calc(100vh - 108px);
      border: 0; border-radius: 14px; box-shadow: 0 8px 30px rgba(0,0,0,.3); background: #fff;
    }
    .panel[hidden] { display: none; }
    @media (max-width: 480px) {
      .panel { inset: 0; width: 100vw; height: 100vh; max-width: none; max-height: none; border-radius: 0; }
    }`;
  const button = document.createElement('button');
  button.className = 'bubble';
  button.type = 'button';
  button.setAttribute('aria-label', labels.open);
  button.setAttribute('aria-expanded', 'false');
  button.setAttribute('aria-controls', 'kefu-panel');
  button.innerHTML = '<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true" focusable="false">'
    + '<path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.hidden = true;
  button.append(badge);
  root.append(style, button);

  let frame = null;
  function load() {
    if (frame) return frame;
    const query = new URLSearchParams({
      embed: '1', host: location.origin, page_url: location.href, page_title: document.title,
    });
    if (options.lang) query.set('lang', options.lang);
    if (options.color) query.set('color', color);
    if (options.greeting) query.set('greeting', options.greeting);
    frame = document.createElement('iframe');
    frame.id = 'kefu-panel';
    frame.className = 'panel';
    frame.title = labels.title;
    frame.hidden = true;
    frame.src = `${relay}/?${query}`;
    // Screen sharing (remote assistance) needs the frame to be allowed it.
    frame.allow = 'clipboard-write; display-capture; microphone';
    frame.addEventListener('load', () => { frameReady = true; reportTrail(); }, { once: true });
    root.append(frame);
    return frame;
  }

  function setOpen(open) {
    const panel = load();
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    button.setAttribute('aria-label', open ? labels.close : labels.open);
    const tell = () => panel.contentWindow && panel.contentWindow.postMessage(
      { type: open ? 'kefu:open' : 'kefu:closed' }, relay);
    tell();
    panel.addEventListener('load', tell, { once: true });
    if (open) {
      try { localStorage.setItem(ACTIVE_KEY, '1'); } catch { /* storage may be off */ }
      panel.focus();
    } else {
      button.focus();
    }
  }

  // The page trail: every page of this site the visitor opens in this tab
  // (loads and single-page-app history changes) is kept in sessionStorage
  // until the chat frame is there to report it, so agents see the pages
  // seen before the chat was first opened too. Only the last 50 are kept.
  const TRAIL_KEY = 'kefu.widget.trail';
  const MAX_PAGES = 50;
  function unreported() {
    try { return JSON.parse(sessionStorage.getItem(TRAIL_KEY) || '[]'); } catch { return []; }
  }
  function store(views) {
    try { sessionStorage.setItem(TRAIL_KEY, JSON.stringify(views.slice(-MAX_PAGES))); } catch { /* off */ }
  }
  let lastUrl = null;
  function pageSeen() {
    if (location.href === lastUrl) return; // e.g. replaceState of the same address
    lastUrl = location.href;
    const views = unreported();
    views.push({
      url: location.href, title: document.title,
      referrer: document.referrer || undefined, at: new Date().toISOString(),
    });
    store(views);
    reportTrail();
  }
  /** Hands the pages not yet reported to the chat frame, once it is loaded. */
  function reportTrail() {
    if (!frame || !frameReady || !frame.contentWindow) return;
    const views = unreported();
    if (!views.length) return;
    frame.contentWindow.postMessage({ type: 'kefu:pages', views }, relay);
    store([]);
  }
  let frameReady = false;
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method];
    history[method] = function (...args) {
      const result = original.apply(this, args);
      // The app sets the new title right after; read it once it has.
      setTimeout(pageSeen, 0);
      return result;
    };
  }
  window.addEventListener('popstate', () => setTimeout(pageSeen, 0));
  window.addEventListener('hashchange', pageSeen);

  button.addEventListener('click', () => setOpen(!frame || frame.hidden));
  window.addEventListener('message', (event) => {
    if (event.origin !== relay || !frame || event.source !== frame.contentWindow) return;
    const data = event.data || {};
    if (data.type === 'kefu:unread') {
      const count = Number(data.count) || 0;
      badge.hidden = count === 0;
      badge.textContent = count > 99 ? '99+' : String(count);
    } else if (data.type === 'kefu:close') {
      setOpen(false);
    } else if (data.type === 'kefu:open-page' && typeof data.url === 'string') {
      // An agent's link card: a page of this site opens here (the chat
      // comes back on the next page); any other site in a new tab.
      let target;
      try { target = new URL(data.url); } catch { return; }
      if (target.protocol !== 'http:' && target.protocol !== 'https:') return;
      if (target.origin === location.origin) location.assign(target.href);
      else window.open(target.href, '_blank', 'noopener,noreferrer');
    }
  });

  function mount() {
    pageSeen();
    document.body.append(host);
    try { if (localStorage.getItem(ACTIVE_KEY)) load(); } catch { /* storage may be off */ }
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
