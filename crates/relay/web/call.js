// kefu remote assistance, the visitor's side: asks for consent when an
// agent wants to see the screen, shares it with getDisplayMedia, and keeps
// one WebRTC connection per agent in the call (a mesh; the relay forwards
// only the signalling, docs/protocol.md "Calls"). Loaded by the chat page;
// chat.js hands it every `call_*` frame with a function to send frames.
(() => {
  'use strict';

  const STRINGS = {
    en: {
      ask: '{0} asks to see your screen.',
      what: 'You choose what to share: one tab, one window or your whole screen. They see it until you stop. Nothing is recorded.',
      mic: 'Also share my microphone', share: 'Share my screen', decline: 'No, thanks',
      sharing: 'You are sharing your screen', stop: 'Stop',
      ended: 'Screen sharing ended.', declined: 'You declined to share your screen.',
      failed: 'Your screen could not be shared.',
    },
    zh: {
      ask: '{0} 请求查看您的屏幕。',
      what: '您可以选择共享一个标签页、一个窗口或整个屏幕。在您停止之前对方都能看到。不会录制。',
      mic: '同时共享我的麦克风', share: '共享屏幕', decline: '不用了',
      sharing: '您正在共享屏幕', stop: '停止',
      ended: '屏幕共享已结束。', declined: '您拒绝了屏幕共享。',
      failed: '无法共享您的屏幕。',
    },
  };

  let send = () => {};
  let lang = 'en';
  const t = (key) => STRINGS[lang][key] || STRINGS.en[key];

  const call = {
    id: null, // the call being asked for or shared
    stream: null, // the screen (and microphone) being shared
    iceServers: [],
    peers: new Map(), // peer id -> RTCPeerConnection
    prompt: null,
    bar: null,
  };

  /** A line of the chat log, through chat.js's own notice, if any. */
  function notice(text) {
    const log = document.getElementById('log');
    if (!log) return;
    const item = document.createElement('li');
    item.className = 'msg system';
    const bubble = document.createElement('div');
    bubble.className = 'bubble';
    bubble.textContent = text;
    item.append(bubble);
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function button(text, className, onClick) {
    const el = document.createElement('button');
    el.type = 'button';
    el.className = className;
    el.textContent = text;
    el.addEventListener('click', onClick);
    return el;
  }

  /** The consent prompt: who asks (their name is untrusted text, in its
   *  own bdi), what is shared, accept or decline. Ignoring it changes
   *  nothing: the chat goes on, and the call ends unanswered. */
  function ask(invite) {
    closePrompt();
    call.id = invite.call_id;
    const box = document.createElement('div');
    box.className = 'call-prompt';
    box.setAttribute('role', 'alertdialog');
    box.setAttribute('aria-live', 'assertive');
    const question = document.createElement('p');
    const [before, after] = t('ask').split('{0}');
    const name = document.createElement('bdi');
    name.dir = 'auto';
    name.textContent = invite.by.name;
    question.append(before, name, after);
    const what = document.createElement('p');
    what.className = 'call-what';
    what.textContent = t('what');
    const micLabel = document.createElement('label');
    const mic = document.createElement('input');
    mic.type = 'checkbox';
    mic.id = 'call-mic';
    micLabel.append(mic, ' ', t('mic'));
    const actions = document.createElement('div');
    actions.className = 'call-actions';
    actions.append(
      button(t('share'), 'call-accept', () => accept(invite.call_id, mic.checked)),
      button(t('decline'), 'call-decline', () => decline(invite.call_id)),
    );
    box.append(question, what, micLabel, actions);
    document.querySelector('main').prepend(box);
    call.prompt = box;
  }

  function closePrompt() {
    if (call.prompt) call.prompt.remove();
    call.prompt = null;
  }

  async function accept(callId, withMic) {
    closePrompt();
    try {
      // Asked first, inside the click: browsers allow it only then.
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      if (withMic) {
        try {
          const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
          for (const track of mic.getAudioTracks()) stream.addTrack(track);
        } catch { /* the screen alone, then */ }
      }
      call.stream = stream;
    } catch {
      notice(t('failed'));
      send({ type: 'call_decline', call_id: callId });
      return;
    }
    // The browser's own "stop sharing" ends it too.
    for (const track of call.stream.getVideoTracks()) track.addEventListener('ended', stop);
    showBar();
    send({ type: 'call_accept', call_id: callId });
  }

  function decline(callId) {
    closePrompt();
    notice(t('declined'));
    send({ type: 'call_decline', call_id: callId });
  }

  /** The persistent "you are sharing" bar, with its one-click stop. */
  function showBar() {
    const bar = document.createElement('div');
    bar.className = 'call-bar';
    bar.setAttribute('role', 'status');
    const text = document.createElement('span');
    text.textContent = `${t('sharing')} — `;
    bar.append(text, button(t('stop'), 'call-stop', stop));
    document.querySelector('main').prepend(bar);
    call.bar = bar;
  }

  /** Stops sharing: the call ends for everybody. */
  function stop() {
    if (call.id) send({ type: 'call_hangup', call_id: call.id });
    end();
  }

  function end() {
    closePrompt();
    if (call.bar) call.bar.remove();
    call.bar = null;
    if (call.stream) for (const track of call.stream.getTracks()) track.stop();
    call.stream = null;
    for (const pc of call.peers.values()) pc.close();
    call.peers.clear();
    call.id = null;
  }

  /** A connection to one agent, sending the screen; this side offers. */
  async function connectTo(peer) {
    if (!call.stream || call.peers.has(peer)) return;
    const pc = new RTCPeerConnection({ iceServers: call.iceServers });
    call.peers.set(peer, pc);
    for (const track of call.stream.getTracks()) pc.addTrack(track, call.stream);
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) signal(peer, 'ice', JSON.stringify(candidate.toJSON()));
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    signal(peer, 'offer', offer.sdp);
  }

  function signal(to, kind, data) {
    send({ type: 'call_signal', call_id: call.id, to, kind, data });
  }

  async function received(frame) {
    const pc = call.peers.get(frame.from);
    if (!pc) return;
    if (frame.kind === 'answer') {
      await pc.setRemoteDescription({ type: 'answer', sdp: frame.data });
    } else if (frame.kind === 'ice') {
      try { await pc.addIceCandidate(JSON.parse(frame.data)); } catch { /* a stale candidate */ }
    }
  }

  function handle(frame, sendFrame, language) {
    send = sendFrame;
    lang = language === 'zh' ? 'zh' : 'en';
    switch (frame.type) {
      case 'call_invite': ask(frame); break;
      case 'call_welcome':
        if (frame.call_id !== call.id) return;
        call.iceServers = frame.ice_servers || [];
        for (const peer of frame.peers) if (peer.who.kind === 'agent') connectTo(peer.peer);
        break;
      case 'call_joined':
        if (frame.call_id === call.id && frame.who.kind === 'agent') connectTo(frame.peer);
        break;
      case 'call_left': {
        const pc = call.peers.get(frame.peer);
        if (pc) pc.close();
        call.peers.delete(frame.peer);
        break;
      }
      case 'call_signal': if (frame.call_id === call.id) received(frame); break;
      case 'call_ended':
        if (frame.call_id !== call.id) return;
        if (call.stream) notice(t('ended'));
        end();
        break;
      default: break;
    }
  }

  // Closing the page stops sharing; the relay also ends the call once the
  // visitor is gone past the presence grace.
  window.addEventListener('pagehide', () => { if (call.stream) stop(); });

  window.kefuCall = { handle };
})();
