// kefu visitor page: files sent with messages (docs/protocol.md, "Files").
// Raster images show as thumbnails that open full size (the relay's small
// JPEG when it made one, else the image itself, scaled); other files as
// download chips. Download links are signed and live five minutes, so each
// is asked for when a file is shown or clicked. Names are inserted as text.
// Sending: `upload` puts one file with a progress callback and can be
// cancelled; chat.js sends the message that names it.
(() => {
  'use strict';

  const RASTER = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
  /** Largest side of an image shown in a bubble, in CSS pixels (chat.css). */
  const THUMB_BOX = 160;

  /** A fresh `FileLink` to file `id`: `{ url, expires_at, thumbnail_url? }`. */
  async function link(id, token) {
    const response = await fetch(`/api/files/${encodeURIComponent(id)}/link`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!response.ok) throw new Error(`no link (${response.status})`);
    return response.json();
  }

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  /** Opens a fresh link to `file`: a new tab for an image, a download else. */
  async function open(file, token) {
    const anchor = document.createElement('a');
    anchor.href = (await link(file.id, token)).url;
    anchor.rel = 'noopener';
    if (RASTER.includes(file.content_type)) anchor.target = '_blank';
    else anchor.download = file.name;
    anchor.click();
  }

  /** A list of `attachments` (protocol `Attachment`s) for a chat bubble. */
  function render(attachments, token) {
    const list = document.createElement('ul');
    list.className = 'files';
    for (const file of attachments) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.title = file.name;
      button.addEventListener('click', () => open(file, token).catch(() => {}));
      if (RASTER.includes(file.content_type)) {
        button.className = 'thumb';
        const image = document.createElement('img');
        image.alt = file.name;
        if (file.width && file.height) {
          // Room kept before it loads, so the log does not jump; the same
          // box as chat.css's 160-pixel bounds give it once loaded.
          const scale = Math.min(1, THUMB_BOX / file.width, THUMB_BOX / file.height);
          image.width = Math.max(1, Math.round(file.width * scale));
          image.height = Math.max(1, Math.round(file.height * scale));
        }
        link(file.id, token).then((signed) => {
          image.src = (file.thumbnail && signed.thumbnail_url) || signed.url;
        }).catch(() => {});
        button.append(image);
      } else {
        button.className = 'chip';
        button.textContent = `📎 ${file.name} (${size(file.size)})`;
      }
      item.append(button);
      list.append(item);
    }
    return list;
  }

  /** Uploads `file` as the visitor; resolves to its `Attachment`, rejects
   *  with an Error whose `code` is the relay's (`too_large`, …) or
   *  `cancelled`. Returns `{ done, cancel }`. */
  function upload(file, token, onProgress) {
    const request = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
      const fail = (code, message) => reject(Object.assign(new Error(message || code), { code }));
      request.open('POST', `/api/files?name=${encodeURIComponent(file.name || 'pasted.png')}`);
      request.setRequestHeader('Authorization', `Bearer ${token}`);
      request.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      request.onload = () => {
        let body = null;
        try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
        if (request.status === 201 && body) resolve(body);
        else if (request.status === 415) fail('refused_type', body && body.message);
        else fail((body && body.code) || 'internal', body && body.message);
      };
      request.onerror = () => fail('network');
      request.onabort = () => fail('cancelled');
      request.send(file);
    });
    return { done, cancel: () => request.abort() };
  }

  /** Wires the attach button, paste and drag-and-drop to uploads. `chat`
   *  gives the visitor's `token()`, `send(attachment)`, `say(text)` for a
   *  system line and `t(key, ...args)` for the page's language. */
  function wire(chat) {
    const button = document.getElementById('attach');
    const picker = document.getElementById('attach-input');
    const take = (files) => {
      for (const file of files) send(file, chat);
    };
    button.hidden = false;
    button.addEventListener('click', () => picker.click());
    picker.addEventListener('change', () => {
      take(Array.from(picker.files));
      picker.value = '';
    });
    document.addEventListener('paste', (event) => {
      const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
      if (files.length) {
        event.preventDefault();
        take(files);
      }
    });
    document.addEventListener('dragover', (event) => event.preventDefault());
    document.addEventListener('drop', (event) => {
      event.preventDefault();
      take(Array.from((event.dataTransfer && event.dataTransfer.files) || []));
    });
  }

  /** Uploads one file with a progress line and a cancel button, then sends
   *  it; says why when the relay refuses it. */
  function send(file, chat) {
    const token = chat.token();
    if (!token) return;
    const name = file.name || 'pasted.png';
    const line = chat.say(chat.t('uploading', name));
    line.classList.add('upload');
    const progress = document.createElement('progress');
    progress.max = 1;
    progress.value = 0;
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'cancel';
    cancel.textContent = chat.t('cancel').textContent;
    line.querySelector('.meta').append(progress, cancel);
    const { done, cancel: abort } = upload(file, token, (part) => { progress.value = part; });
    cancel.addEventListener('click', abort);
    done.then((attachment) => {
      line.remove();
      chat.send(attachment);
    }).catch((error) => {
      line.remove();
      if (error.code === 'cancelled') return;
      const say = {
        too_large: () => chat.t('fileTooLarge', name),
        refused_type: () => chat.t('fileRefused', name),
      }[error.code];
      const said = chat.say(say ? say() : chat.t('fileFailed', name, error.message));
      said.classList.add('upload-error');
    });
  }

  window.kefuFiles = { render, upload, wire };
})();
