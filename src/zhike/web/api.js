// The API client: the session cookie authenticates; requests that change something carry X-CSRF-Token.
let csrf = null;

export function setCsrf(token) {
  csrf = token || null;
}

// An error answer of the API: {error: {code, message, field, limit, kind, details}}.
export class ApiError extends Error {
  constructor(status, message, code, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
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

// Upload a File/Blob as a new asset; returns the asset record.
export async function uploadAsset(file, { tags = [], filename = "upload.png" } = {}) {
  const form = new FormData();
  form.append("file", file, file.name || filename);
  if (tags.length) form.append("tags", tags.join(","));
  const headers = { Accept: "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  return send("/api/v1/assets", { method: "POST", headers, body: form });
}
