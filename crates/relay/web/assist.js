// kefu assist page: an agent's view of a visitor's shared screen. Opened
// from a one-time link (`/assist#code=…`) that kefu-tui shows; the code
// signs in once, then the page answers the visitor's WebRTC offer. The
// relay forwards only the signalling (docs/protocol.md, "Calls").
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const video = $('screen'), status = $('assist-status');
  const code = new URLSearchParams(location.hash.slice(1)).get('code');
  // The code works once: keep it out of the address bar and history.
  history.replaceState(null, '', location.pathname);

  const state = { callId: null, iceServers: [], peers: new Map(), over: false };
  const say = (text) => { status.textContent = text; };

  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws/assist`);
  const send = (frame) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame)); };
  ws.onopen = () => {
    if (!code) { say('This link has no code.'); ws.close(); return; }
    send({ type: 'hello', code });
  };
  ws.onclose = () => { if (!state.over) say('Disconnected from the relay.'); };
  ws.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    handle(frame);
  };

  function handle(frame) {
    switch (frame.type) {
      case 'call_welcome':
        state.callId = frame.call_id;
        state.iceServers = frame.ice_servers || [];
        say(frame.peers.some((p) => p.who.kind === 'visitor')
          ? 'Connecting to the visitor…' : 'Waiting for the visitor to share their screen…');
        break;
      case 'call_joined':
        if (frame.who.kind === 'visitor') say('The visitor is sharing; connecting…');
        break;
      case 'call_left': {
        const pc = state.peers.get(frame.peer);
        if (pc) pc.close();
        state.peers.delete(frame.peer);
        break;
      }
      case 'call_signal': received(frame); break;
      case 'call_ended':
        state.over = true;
        for (const pc of state.peers.values()) pc.close();
        state.peers.clear();
        video.srcObject = null;
        document.body.dataset.ended = frame.reason;
        say(`The call has ended (${frame.reason.replace('_', ' ')}).`);
        ws.close();
        break;
      case 'error':
        say(frame.message);
        document.body.dataset.error = frame.code;
        break;
      default: break;
    }
  }

  /** The visitor offers; this page answers and shows what arrives. */
  async function received(frame) {
    let pc = state.peers.get(frame.from);
    if (frame.kind === 'offer') {
      if (pc) pc.close();
      pc = new RTCPeerConnection({ iceServers: state.iceServers });
      state.peers.set(frame.from, pc);
      pc.onicecandidate = ({ candidate }) => {
        if (candidate) signal(frame.from, 'ice', JSON.stringify(candidate.toJSON()));
      };
      pc.ontrack = ({ streams }) => {
        if (streams[0] && video.srcObject !== streams[0]) video.srcObject = streams[0];
        say('Showing the visitor\u2019s screen.');
      };
      await pc.setRemoteDescription({ type: 'offer', sdp: frame.data });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      signal(frame.from, 'answer', answer.sdp);
    } else if (frame.kind === 'ice' && pc) {
      try { await pc.addIceCandidate(JSON.parse(frame.data)); } catch { /* a stale candidate */ }
    }
  }

  function signal(to, kind, data) {
    send({ type: 'call_signal', call_id: state.callId, to, kind, data });
  }

  // Controls: the visitor's microphone (if shared) starts muted here.
  const mute = $('mute');
  mute.addEventListener('click', () => {
    video.muted = !video.muted;
    mute.textContent = video.muted ? 'Unmute' : 'Mute';
    mute.setAttribute('aria-pressed', String(video.muted));
  });
  $('fullscreen').addEventListener('click', () => video.requestFullscreen && video.requestFullscreen());
  $('end').addEventListener('click', () => {
    if (state.callId) send({ type: 'call_hangup', call_id: state.callId });
  });

  /** Bytes of video received so far, from getStats: for operators checking
   *  a call, and for the tests. */
  window.kefuAssist = {
    async bytesReceived() {
      let total = 0;
      for (const pc of state.peers.values()) {
        const stats = await pc.getStats();
        stats.forEach((report) => {
          if (report.type === 'inbound-rtp' && report.kind === 'video') total += report.bytesReceived;
        });
      }
      return total;
    },
  };
})();
