// kefu visitor page: files sent with messages (docs/protocol.md, "Files").
// Raster images show as thumbnails that open full size; other files as
// download chips. Download links are signed and live five minutes, so each
// is asked for when a file is shown or clicked. Names are inserted as text.
// Sending files from the page is not done yet.
(() => {
  'use strict';

  const RASTER = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

  async function link(id, token) {
    const response = await fetch(`/api/files/${encodeURIComponent(id)}/link`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!response.ok) throw new Error(`no link (${response.status})`);
    return (await response.json()).url;
  }

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  /** Opens a fresh link to `file`: a new tab for an image, a download else. */
  async function open(file, token) {
    const anchor = document.createElement('a');
    anchor.href = await link(file.id, token);
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
        link(file.id, token).then((url) => { image.src = url; }).catch(() => {});
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

  window.kefuFiles = { render };
})();
