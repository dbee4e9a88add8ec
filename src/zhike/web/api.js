// The API client: the session cookie authenticates; requests that change something carry X-CSRF-Token.
let csrf = null;

export function setCsrf(token) {
  csrf = token || null;
}

// An error answer of the API: {error: {code, type, message, field, fields, limit, kind, ctx, details}}.
export class ApiError extends Error {
  constructor(status, message, code, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.type = extra.type || null;
    this.fields = extra.fields || null;
    this.field = extra.field || null;
    this.limit = extra.limit ?? null;
    this.kind = extra.kind || null;
    this.ctx = extra.ctx || null;
  }
}

async function send(path, init) {
  let res;
  try {
    res = await fetch(path, { credentials: "same-origin", ...init });
  } catch {
    throw new ApiError(0, null, "network");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = data.error || {};
    throw new ApiError(res.status, err.message || data.detail || res.statusText, err.code, err);
  }
  return data;
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  return send(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

// What file pickers offer: the formats uploads accept (services/images.py); extensions too, for browsers that do not
// know HEIC or AVIF by media type.
export const UPLOAD_ACCEPT = "image/png,image/jpeg,image/webp,image/heic,image/heif,image/avif,image/tiff,image/bmp,image/gif,.heic,.heif,.avif,.tif,.tiff";

// Upload a File/Blob as a new asset; returns the asset record.
export async function uploadAsset(file, { tags = [], filename = "upload.png" } = {}) {
  return uploadForm("/api/v1/assets", file, { tags: tags.length ? tags.join(",") : null }, filename);
}

// A POST answered with a file (e.g. a preview PNG): returns a Blob; errors are ApiErrors like api()'s.
export async function apiBlob(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let res;
  try {
    res = await fetch(path, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body) });
  } catch {
    throw new ApiError(0, null, "network");
  }
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    const err = data.error || {};
    throw new ApiError(res.status, err.message || res.statusText, err.code, err);
  }
  return res.blob();
}

// A multipart POST of a file with extra form fields; answers JSON.
export async function uploadForm(path, file, fields = {}, filename = "upload") {
  const form = new FormData();
  form.append("file", file, file.name || filename);
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) form.append(k, v);
  const headers = { Accept: "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  return send(path, { method: "POST", headers, body: form });
}

// A POST answered as server-sent events (e.g. a knowledge-base answer): the Response with its body unread; an error
// answer (a JSON body) throws an ApiError like api()'s.
export async function apiStream(path, body, { signal } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let res;
  try {
    res = await fetch(path, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body), signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(0, null, "network");
  }
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    const err = data.error || {};
    throw new ApiError(res.status, err.message || res.statusText, err.code, err);
  }
  return res;
}

// A multipart upload of one file that reports its progress (fetch cannot): onProgress(0..1) while it is sent;
// resolves with the JSON answer, rejects with an ApiError.
export function uploadWithProgress(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Accept", "application/json");
    if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = (ev) => ev.lengthComputable && onProgress(ev.loaded / ev.total);
    xhr.onerror = () => reject(new ApiError(0, null, "network"));
    xhr.onload = () => {
      let data = {};
      try {
        data = JSON.parse(xhr.responseText || "{}");
      } catch {
        // not JSON (a proxy's page): the status says enough
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data);
      const err = data.error || {};
      reject(new ApiError(xhr.status, err.message || xhr.statusText, err.code, err));
    };
    const form = new FormData();
    form.append("file", file, file.name || "document");
    xhr.send(form);
  });
}

// Server-sent events from a Response, as {event, data} with data parsed as JSON.
export async function* sseEvents(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += decoder.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
    if (done) return;
  }
}

// An asset's file (labelled export) and its small WebP thumbnail.
export const assetFileUrl = (id) => `/api/v1/assets/${encodeURIComponent(id)}/file`;
export const assetThumbUrl = (id) => `/api/v1/assets/${encodeURIComponent(id)}/thumb`;
