// kefu visitor chat page. Plain JavaScript, no build step, no dependencies.
//
// Speaks protocol v1 (docs/protocol.md) over a WebSocket, or over HTTP
// long-polling when WebSockets do not work here (or `?transport=longpoll`).
// Everything anybody typed is inserted as text, never as HTML.
//
// Over 600 lines, in `// ----` sections: what stands alone has its own
// script (files.js, call.js); the rest shares the page's state (the
// message list, pending sends, the transport a WebSocket can hand over to
// long-polling), which without a build step would otherwise travel
// through globals.
(() => {
  'use strict';

  const params = new URLSearchParams(location.search);
  const embedded = params.get('embed') === '1';
  const hostOrigin = params.get('host') || '';
  /** The widget's `data-greeting`, honoured only inside a frame: the page's
   *  CSP lets only allowed origins frame it, so a link to the relay's own
   *  address cannot put words in the company's mouth (phishing). */
  const greeting = () => (embedded && window.parent !== window ? params.get('greeting') : null);

  // ---- text in two languages -------------------------------------------
  const STRINGS = {
    en: {
      title: 'Chat with us', connecting: 'Connecting…', online: 'We are online',
      offline: 'We are away', reconnecting: 'Connection lost — reconnecting…',
      offlineHint: "No one is available right now. Leave your email and we'll reply here, or by email.",
      emailLabel: 'Your email', save: 'Save', emailSaved: "Thanks! We'll get back to you at {0}.",
      inputLabel: 'Your message', placeholder: 'Type a message…', send: 'Send', close: 'Close chat',
      log: 'Messages', sending: 'Sending…', sent: 'Sent', seen: 'Seen', failed: 'Not sent',
      retry: 'Retry', typing: '{0} is typing…', you: 'You', announcement: 'Announcement',
      busy: "We're getting a lot of chats right now. Please try again in a minute, or leave your email and we'll reply.",
      unreadTitle: '({0}) {1}',
      attach: 'Attach a file', uploading: 'Uploading {0}…', cancel: 'Cancel',
      fileTooLarge: '{0} is too large to send.', fileRefused: 'Files like {0} cannot be sent.',
      fileFailed: '{0} could not be sent: {1}',
      historyDeleted: 'Earlier messages of this chat were deleted.',
    },
    zh: {
      title: '在线客服', connecting: '正在连接…', online: '客服在线',
      offline: '客服暂时不在', reconnecting: '连接已断开，正在重连…',
      offlineHint: '现在没有客服在线。留下您的邮箱，我们会在这里或通过邮件回复您。',
      emailLabel: '您的邮箱', save: '保存', emailSaved: '谢谢！我们会通过 {0} 联系您。',
      inputLabel: '您的消息', placeholder: '输入消息…', send: '发送', close: '关闭对话',
      log: '消息', sending: '发送中…', sent: '已发送', seen: '已读', failed: '发送失败',
      retry: '重试', typing: '{0} 正在输入…', you: '我', announcement: '公告',
      busy: '现在咨询的人很多。请稍后再试，或留下您的邮箱，我们会回复您。',
      unreadTitle: '({0}) {1}',
      attach: '发送文件', uploading: '正在上传 {0}…', cancel: '取消',
      fileTooLarge: '{0} 太大，无法发送。', fileRefused: '无法发送 {0} 这类文件。',
      fileFailed: '{0} 发送失败：{1}',
      historyDeleted: '此对话之前的消息已被删除。',
    },
  };
  const requestedLang = params.get('lang') || navigator.language || 'en';
  const lang = requestedLang.toLowerCase().startsWith('zh') ? 'zh' : 'en';
  const t = (key, ...args) =>
    (STRINGS[lang][key] || STRINGS.en[key] || key).replace(/\{(\d)\}/g, (_, i) => args[i]);
  /** `t` as nodes, each argument in its own `<bdi>`: a name or address
   *  written right-to-left (or carrying U+202E) cannot reorder the sentence. */
  function tIsolated(key, ...args) {
    const fragment = document.createDocumentFragment();
    const template = STRINGS[lang][key] || STRINGS.en[key] || key;
    let last = 0;
    for (const match of template.matchAll(/\{(\d)\}/g)) {
      fragment.append(template.slice(last, match.index), isolated('bdi', args[match[1]]));
      last = match.index + match[0].length;
    }
    fragment.append(template.slice(last));
    return fragment;
  }
  /** An element holding untrusted text, its direction taken from the text
   *  and its bidi controls kept inside it (`dir="auto"` isolates). */
  function isolated(tag, text) {
    const el = document.createElement(tag);
    el.dir = 'auto';
    el.textContent = text;
    return el;
  }

  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  // The widget's colour, if it passed one (a CSS hex colour or name only).
  const accent = params.get('color');
  if (accent && /^#[0-9a-fA-F]{3,8}$|^[a-zA-Z]+$/.test(accent)) {
    document.documentElement.style.setProperty('--accent', accent);
    document.documentElement.style.setProperty('--mine', accent);
  }
  const baseTitle = t('title');
  document.title = baseTitle;

  // ---- elements --------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const log = $('log'), input = $('input'), compose = $('compose'), banner = $('banner');
  const statusLine = $('status'), statusText = $('status-text'), typingLine = $('typing');
  const emailForm = $('email-form'), emailInput = $('email'), closeButton = $('close');

  // ---- persistent state (this browser, this relay) ---------------------
  const saved = {
    get token() { return localStorage.getItem('kefu.token'); },
    set token(value) { localStorage.setItem('kefu.token', value); },
    get email() { return localStorage.getItem('kefu.email'); },
    set email(value) { localStorage.setItem('kefu.email', value); },
    // Messages typed but not acknowledged survive a reload and are resent
    // with their client_id, which the relay deduplicates.
    get outbox() {
      try { return JSON.parse(localStorage.getItem('kefu.outbox') || '[]'); } catch { return []; }
    },
    set outbox(items) { localStorage.setItem('kefu.outbox', JSON.stringify(items)); },
  };

  const state = {
    connected: false,
    agentsOnline: null,
    conversationId: null, // the conversation the shown messages are of
    lastSeq: 0, // highest seq shown
    shown: new Set(), // seqs shown
    pending: new Map(), // client_id -> {text, el, timer}
    sent: new Map(), // seq -> element of our own message, for "seen"
    agentReadUpTo: 0,
    unread: 0,
    open: !embedded,
    greeted: false,
    typingTimer: null,
    busy: false, // the relay could not take a new conversation now
  };

  // ---- rendering -------------------------------------------------------
  const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/g;

  /** Text with http(s) links made clickable, built from text nodes only. */
  function linkify(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      let url = match[0].replace(/[.,!?;:)\]}'"]+$/, '');
      const start = match.index;
      fragment.append(document.createTextNode(text.slice(last, start)));
      const link = document.createElement('a');
      link.href = url;
      link.textContent = url;
      link.target = '_blank';
      link.rel = 'noopener noreferrer nofollow ugc';
      fragment.append(link);
      last = start + url.length;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  /** An agent's link card ("open this page") as a button-like link. In the
   *  widget it asks the host page to go there (same site) so the visitor
   *  stays on the site with the chat; on the chat page alone it opens a new
   *  tab so the conversation stays open. Label and address are text. */
  function linkCard(card) {
    if (!card || typeof card.url !== 'string' || !/^https?:\/\//i.test(card.url)) return null;
    const link = document.createElement('a');
    link.className = 'link-card';
    link.href = card.url;
    link.dir = 'auto';
    link.textContent = String(card.label || card.url);
    link.title = card.url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer nofollow';
    if (embedded && hostOrigin) {
      link.addEventListener('click', (event) => {
        event.preventDefault();
        parent.postMessage({ type: 'kefu:open-page', url: card.url }, hostOrigin);
      });
    }
    return link;
  }

  function timeLabel(at) {
    const date = at ? new Date(at) : new Date();
    const el = document.createElement('time');
    el.dateTime = date.toISOString();
    el.textContent = date.toLocaleTimeString(lang === 'zh' ? 'zh-CN' : undefined, { hour: '2-digit', minute: '2-digit' });
    return el;
  }

  function bubble({ kind, author, text, at }) {
    const item = document.createElement('li');
    item.className = `msg ${kind}`;
    if (author) {
      const name = isolated('span', author);
      name.className = 'author';
      item.append(name);
    }
    const body = document.createElement('div');
    body.className = 'bubble';
    body.dir = 'auto';
    // Text from the relay is linkified; nodes were built by this page.
    body.append(typeof text === 'string' ? linkify(text) : text);
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.append(timeLabel(at));
    const status = document.createElement('span');
    status.className = 'delivery';
    meta.append(status);
    item.append(body, meta);
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function setDelivery(el, key) {
    el.classList.toggle('failed', key === 'failed');
    el.querySelector('.delivery').textContent = t(key);
    el.dataset.delivery = key;
  }

  /** Follows the visitor's conversation as the relay names it. When the
   *  page shows another one, that one was deleted (by an operator, or by
   *  the retention) and the relay starts the visitor a new conversation
   *  whose seqs start over at 1: the old messages go, or new ones with the
   *  same seqs would be taken for them and never shown. Messages still
   *  being sent stay, and the page connects again to be sent the new
   *  conversation from its start: a replay or a poll asked for what came
   *  after the old one's last seq. Whether the page showed another. */
  function follow(conversationId) {
    const id = conversationId || null;
    if (id === state.conversationId) return false;
    const replaced = state.conversationId !== null;
    state.conversationId = id;
    if (!replaced) return false;
    for (const el of log.querySelectorAll('li[data-seq]')) el.remove();
    state.shown.clear();
    state.sent.clear();
    state.lastSeq = 0;
    state.agentReadUpTo = 0;
    lastReadSent = 0;
    bubble({ kind: 'system', text: t('historyDeleted') });
    transport.restart(1);
    return true;
  }

  function showMessage(message) {
    follow(message.conversation_id);
    if (state.shown.has(message.seq)) return;
    state.shown.add(message.seq);
    state.lastSeq = Math.max(state.lastSeq, message.seq);
    const pending = state.pending.get(message.client_id);
    if (message.author.kind === 'visitor' && pending) {
      acknowledged(message.client_id, message.seq);
      return;
    }
    if (message.author.kind === 'visitor') {
      const el = bubble({ kind: 'mine', text: content(message), at: message.at });
      markSent(el, message.seq);
      return;
    }
    const el = bubble({ kind: 'theirs', author: message.author.name, text: linkCard(message.link) || content(message), at: message.at });
    el.dataset.seq = message.seq;
    setTyping(null);
    // An agent who replies has read everything before the reply.
    agentRead(message.seq - 1);
    if (!state.open || document.hidden) {
      state.unread += 1;
      showUnread();
    } else {
      sendRead();
    }
  }

  /** A message's text, linkified, and its files (files.js) when it has any. */
  function content(message) {
    if (!message.attachments || !message.attachments.length || !window.kefuFiles) return message.text;
    const both = document.createDocumentFragment();
    both.append(linkify(message.text), window.kefuFiles.render(message.attachments, saved.token));
    return both;
  }

  function agentRead(upToSeq) {
    if (upToSeq <= state.agentReadUpTo) return;
    state.agentReadUpTo = upToSeq;
    for (const [seq, el] of state.sent) if (seq <= upToSeq) setDelivery(el, 'seen');
  }

  function markSent(el, seq) {
    el.dataset.seq = seq;
    state.sent.set(seq, el);
    setDelivery(el, seq <= state.agentReadUpTo ? 'seen' : 'sent');
  }

  function showUnread() {
    document.title = state.unread ? t('unreadTitle', state.unread, baseTitle) : baseTitle;
    if (embedded && hostOrigin) {
      parent.postMessage({ type: 'kefu:unread', count: state.unread }, hostOrigin);
    }
  }

  function setStatus() {
    const online = state.connected && state.agentsOnline > 0;
    statusLine.classList.toggle('online', online);
    statusText.textContent = !state.connected && state.agentsOnline === null
      ? t('connecting')
      : online ? t('online') : t('offline');
    const away = state.connected && state.agentsOnline === 0;
    emailForm.hidden = !(away || state.busy) || Boolean(saved.email);
  }

  function setBanner(text, isError) {
    banner.hidden = !text;
    banner.textContent = text || '';
    banner.classList.toggle('error', Boolean(isError));
  }

  function setTyping(name) {
    clearTimeout(state.typingTimer);
    typingLine.replaceChildren(name ? tIsolated('typing', name) : '');
    // A peer that vanishes never says it stopped typing.
    if (name) state.typingTimer = setTimeout(() => setTyping(null), 6000);
  }

  // ---- sending ---------------------------------------------------------
  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function persistOutbox() {
    saved.outbox = Array.from(state.pending, ([client_id, p]) => ({ client_id, text: p.text, attachments: p.attachments }));
  }

  function queue(text, clientId = newClientId(), attachments = []) {
    const el = bubble({ kind: 'mine', text: content({ text, attachments }) });
    setDelivery(el, 'sending');
    state.pending.set(clientId, { text, attachments, el, timer: null });
    persistOutbox();
    transmit(clientId);
  }

  function transmit(clientId) {
    const pending = state.pending.get(clientId);
    if (!pending) return;
    setDelivery(pending.el, 'sending');
    clearTimeout(pending.timer);
    // Offline it simply waits: welcome resends everything pending.
    if (!state.connected) return;
    // Unanswered for long while connected: show it failed, with a retry.
    pending.timer = setTimeout(() => failed(clientId), 15000);
    const ids = (pending.attachments || []).map((file) => file.id);
    transport.send({ type: 'send', client_id: clientId, text: pending.text, ...(ids.length ? { attachments: ids } : {}) });
  }

  function acknowledged(clientId, seq) {
    const pending = state.pending.get(clientId);
    if (!pending) return;
    clearTimeout(pending.timer);
    state.pending.delete(clientId);
    persistOutbox();
    state.shown.add(seq);
    state.lastSeq = Math.max(state.lastSeq, seq);
    markSent(pending.el, seq);
    if (state.busy) {
      state.busy = false;
      setBanner(null);
      setStatus();
    }
  }

  function failed(clientId, reason) {
    const pending = state.pending.get(clientId);
    if (!pending) return;
    clearTimeout(pending.timer);
    setDelivery(pending.el, 'failed');
    if (reason) pending.el.title = reason;
    if (!pending.el.querySelector('.retry')) {
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.className = 'retry';
      retry.textContent = t('retry');
      retry.addEventListener('click', () => { retry.remove(); transmit(clientId); });
      pending.el.querySelector('.meta').append(retry);
    }
  }

  let lastReadSent = 0;
  function sendRead() {
    if (!state.connected || state.lastSeq <= lastReadSent) return;
    lastReadSent = state.lastSeq;
    transport.send({ type: 'read', up_to_seq: state.lastSeq });
  }

  let typingSentAt = 0, typingIdle = null;
  function typed() {
    if (!state.connected) return;
    const now = Date.now();
    if (now - typingSentAt > 3000) {
      typingSentAt = now;
      transport.send({ type: 'typing', active: true });
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stoppedTyping, 4000);
  }
  function stoppedTyping() {
    clearTimeout(typingIdle);
    if (typingSentAt && state.connected) transport.send({ type: 'typing', active: false });
    typingSentAt = 0;
  }

  // ---- frames from the relay -------------------------------------------
  function handle(frame) {
    switch (frame.type) {
      case 'welcome':
        saved.token = frame.token;
        // Connecting again: this welcome's replay follows the old seqs.
        if (follow(frame.conversation_id)) break;
        state.agentsOnline = frame.agents_online;
        state.connected = true;
        setBanner(null);
        if (!state.greeted) {
          state.greeted = true;
          bubble({ kind: 'system', text: greeting() || frame.greeting });
        }
        setStatus();
        // Resend what was never acknowledged: same client_id, no duplicates.
        for (const clientId of state.pending.keys()) transmit(clientId);
        reportPages();
        break;
      case 'message': showMessage(frame); break;
      case 'ack':
        follow(frame.conversation_id);
        acknowledged(frame.client_id, frame.seq);
        break;
      case 'error':
        if (frame.ref && state.pending.has(frame.ref)) {
          failed(frame.ref, frame.message);
          // Too many chats at once (or from this network): say so kindly
          // and offer the email form rather than a bare "not sent".
          if (frame.code === 'rate_limited' && state.lastSeq === 0) {
            state.busy = true;
            setBanner(t('busy'), false);
            setStatus();
          }
        } else {
          setBanner(frame.message, true);
        }
        break;
      case 'typing':
        if (frame.author.kind === 'agent') setTyping(frame.active ? frame.author.name : null);
        break;
      case 'read':
        if (frame.reader === 'agent') agentRead(frame.up_to_seq);
        break;
      case 'presence':
        if (typeof frame.agents_online === 'number') {
          state.agentsOnline = frame.agents_online;
          setStatus();
        }
        break;
      case 'broadcast': {
        const el = bubble({ kind: 'system', author: t('announcement'), text: frame.text, at: frame.at });
        el.classList.add('notice');
        break;
      }
      case 'reconnect': transport.restart(frame.after_ms); break;
      default:
        // Remote-assistance calls live in call.js.
        if (frame.type.startsWith('call_') && window.kefuCall) {
          window.kefuCall.handle(frame, (f) => transport.send(f), lang);
        }
        break; // newer relays may say more
    }
  }

  function hello() {
    return {
      type: 'hello',
      token: saved.token || undefined,
      after_seq: state.lastSeq,
      profile: {
        page_url: params.get('page_url') || location.href,
        page_title: params.get('page_title') || document.title,
        referrer: document.referrer || undefined,
        lang: navigator.language,
        email: saved.email || undefined,
      },
    };
  }

  function disconnected() {
    if (state.connected) {
      state.connected = false;
      setBanner(t('reconnecting'));
      setStatus();
    }
  }

  function backoff(attempt) {
    const base = Math.min(30000, 500 * 2 ** attempt);
    return base / 2 + Math.random() * base / 2;
  }

  // ---- transports ------------------------------------------------------
  /** A frame as JSON, without U+0000, which the relay refuses in any frame
   *  (a page title or a `?page_title=` can hold one). */
  const encode = (frame) =>
    JSON.stringify(frame, (_, value) => (typeof value === 'string' ? value.replace(/\u0000/g, '') : value));

  /** WebSocket; hands over to long-polling if it never gets through. */
  function webSocketTransport() {
    document.documentElement.dataset.transport = 'websocket';
    let ws = null, attempts = 0, everWelcomed = false, timer = null;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/visitor`;
    function connect() {
      ws = new WebSocket(url);
      ws.onopen = () => ws.send(encode(hello()));
      ws.onmessage = (event) => {
        let frame;
        try { frame = JSON.parse(event.data); } catch { return; }
        if (frame.type === 'welcome') { everWelcomed = true; attempts = 0; }
        if (frame.type === 'error' && !state.connected && /token/.test(frame.message)) {
          localStorage.removeItem('kefu.token'); // a relay with a new secret: start afresh
        }
        handle(frame);
      };
      ws.onclose = () => {
        ws = null;
        disconnected();
        attempts += 1;
        if (!everWelcomed && attempts >= 3) {
          transport = longPollTransport();
          transport.start();
          return;
        }
        clearTimeout(timer);
        timer = setTimeout(connect, backoff(attempts));
      };
    }
    return {
      start: connect,
      send(frame) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(encode(frame)); },
      restart(afterMs) {
        clearTimeout(timer);
        if (ws) { ws.onclose = null; ws.close(); ws = null; }
        disconnected();
        timer = setTimeout(connect, afterMs || 1000);
      },
    };
  }

  /** Long-polling over plain HTTP: same frames, as JSON bodies. */
  function longPollTransport() {
    document.documentElement.dataset.transport = 'longpoll';
    let session = null, attempts = 0, generation = 0;
    const authorization = () => ({ Authorization: `Bearer ${saved.token}` });

    async function post(path, frame) {
      const response = await fetch(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(saved.token ? authorization() : {}) },
        body: encode(frame),
      });
      if (response.status === 204) return null;
      return response.json();
    }

    async function connect() {
      const mine = ++generation;
      try {
        const welcome = await post('/api/visitor/hello', hello());
        if (mine !== generation) return;
        if (welcome.type !== 'welcome') {
          if (welcome.code === 'unauthorized') localStorage.removeItem('kefu.token');
          throw new Error(welcome.message);
        }
        session = welcome.session;
        attempts = 0;
        handle(welcome);
        poll(mine);
      } catch {
        retry(mine);
      }
    }

    async function poll(mine) {
      while (mine === generation) {
        let frames;
        try {
          const query = `session=${encodeURIComponent(session)}&after_seq=${state.lastSeq}`;
          const response = await fetch(`/api/visitor/events?${query}`, { headers: authorization(), cache: 'no-store' });
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          frames = await response.json();
        } catch {
          retry(mine);
          return;
        }
        if (mine !== generation) return;
        for (const frame of frames) handle(frame);
      }
    }

    function retry(mine) {
      if (mine !== generation) return;
      disconnected();
      attempts += 1;
      setTimeout(() => { if (mine === generation) connect(); }, backoff(attempts));
    }

    return {
      start: connect,
      async send(frame) {
        if (!session) return;
        try {
          const answer = await post(`/api/visitor/send?session=${encodeURIComponent(session)}`, frame);
          if (answer) handle(answer);
        } catch {
          // Unacknowledged sends stay pending and are resent after reconnecting.
        }
      },
      restart(afterMs) {
        generation += 1;
        disconnected();
        const mine = generation;
        setTimeout(() => { if (mine === generation) connect(); }, afterMs || 1000);
      },
    };
  }

  let transport = params.get('transport') === 'longpoll' || !('WebSocket' in window)
    ? longPollTransport()
    : webSocketTransport();

  // ---- user input ------------------------------------------------------
  compose.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    autosize();
    stoppedTyping();
    queue(text);
    input.focus();
  });
  input.addEventListener('keydown', (event) => {
    // Enter sends; Shift+Enter is a new line; composing CJK text is left alone.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      compose.requestSubmit();
    }
  });
  function autosize() {
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight}px`;
  }
  input.addEventListener('input', () => { autosize(); typed(); });

  emailForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const email = emailInput.value.trim();
    if (!email || !emailInput.checkValidity()) return;
    saved.email = email;
    if (state.connected) transport.send({ type: 'profile', email });
    emailForm.hidden = true;
    bubble({ kind: 'system', text: tIsolated('emailSaved', email) });
  });

  function seen() {
    if (state.open && !document.hidden) {
      state.unread = 0;
      showUnread();
      sendRead();
    }
  }
  document.addEventListener('visibilitychange', seen);
  window.addEventListener('focus', seen);

  if (embedded) {
    closeButton.hidden = false;
    closeButton.addEventListener('click', () => {
      if (hostOrigin) parent.postMessage({ type: 'kefu:close' }, hostOrigin);
    });
    window.addEventListener('message', (event) => {
      if (event.source !== parent || (hostOrigin && event.origin !== hostOrigin)) return;
      if (event.data && event.data.type === 'kefu:open') {
        state.open = true;
        seen();
        input.focus();
      } else if (event.data && event.data.type === 'kefu:closed') {
        state.open = false;
      } else if (event.data && event.data.type === 'kefu:pages' && hostOrigin
        && Array.isArray(event.data.views)) {
        // Pages of the host site the widget saw, oldest first.
        for (const view of event.data.views.slice(-MAX_PAGES)) queuePage(view);
        reportPages();
      }
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && hostOrigin) parent.postMessage({ type: 'kefu:close' }, hostOrigin);
    });
  }

  // ---- page trail ------------------------------------------------------
  // Each page the visitor opens is reported (page_view) so agents see where
  // they are: the widget tells us the host site's pages; on its own, the
  // chat page reports the page it was opened for.
  const MAX_PAGES = 50;
  const pagesToReport = [];
  function queuePage(view) {
    if (!view || typeof view.url !== 'string' || !/^https?:\/\//i.test(view.url)) return;
    pagesToReport.push({
      type: 'page_view',
      url: view.url,
      title: typeof view.title === 'string' && view.title ? view.title : undefined,
      referrer: typeof view.referrer === 'string' && /^https?:\/\//i.test(view.referrer)
        ? view.referrer : undefined,
      at: typeof view.at === 'string' ? view.at : undefined,
    });
    if (pagesToReport.length > MAX_PAGES) pagesToReport.shift();
  }
  function reportPages() {
    if (!state.connected) return; // sent after the next welcome
    while (pagesToReport.length) transport.send(pagesToReport.shift());
  }
  if (!embedded) {
    queuePage({
      url: params.get('page_url') || location.href,
      title: params.get('page_title') || document.title,
      referrer: document.referrer,
    });
  }

  // Messages left unsent by a previous page are shown and resent.
  for (const { client_id, text, attachments } of saved.outbox) {
    if (typeof client_id === 'string' && typeof text === 'string') {
      const files = Array.isArray(attachments) ? attachments : [];
      const el = bubble({ kind: 'mine', text: content({ text, attachments: files }) });
      setDelivery(el, 'sending');
      state.pending.set(client_id, { text, attachments: files, el, timer: null });
    }
  }
  // Attach, paste and drop (files.js): each file uploaded is sent alone.
  if (window.kefuFiles) {
    window.kefuFiles.wire({
      token: () => saved.token,
      send: (attachment) => queue('', newClientId(), [attachment]),
      say: (text) => bubble({ kind: 'system', text }),
      t: tIsolated,
    });
  }
  setStatus();
  transport.start();
})();
