/**
 * What a log line may say about a request: every header and query parameter that can carry a
 * credential is replaced by `[Redacted]`, whatever its case, encoding or spelling of the name.
 */
export const REDACTED = '[Redacted]';

/** A header or parameter whose name says it holds a credential (after lower-casing and dropping punctuation). */
const SECRET_NAME = /(auth|token|key|secret|passw|pwd|cookie|ticket|credential|signature|sig$|session-?id|websocket-?protocol)/;

/** Values that carry a credential whatever their name (`Bearer …`, `Basic …`). */
const SECRET_VALUE = /^\s*(bearer|basic|token|digest|negotiate)\s/i;

const normalise = (name: string) =>
  decodeFully(name)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '');

/** Decodes percent-escapes until stable (double-encoded names too), never throwing on a bad escape. */
function decodeFully(s: string): string {
  let cur = s.replace(/\+/g, ' ');
  for (let i = 0; i < 4; i++) {
    let next: string;
    try {
      next = decodeURIComponent(cur);
    } catch {
      next = cur.replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    }
    if (next === cur) break;
    cur = next;
  }
  return cur;
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(normalise(name));
}

/** A URL with the value of every credential-like query parameter redacted (`?`, `&` and `;` separated). */
export function scrubUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const scrubbedPath = scrubPath(path);
  if (q < 0) return scrubbedPath;
  const query = url
    .slice(q + 1)
    .split(/([&;])/)
    .map((part) => {
      if (part === '&' || part === ';') return part;
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      if (isSecretName(name) || SECRET_VALUE.test(decodeFully(value))) return `${name}=${REDACTED}`;
      return part;
    });
  return `${scrubbedPath}?${query.join('')}`;
}

/** Path segments that are `Bearer …` or look like a key given in the path (`/key=…`) are redacted too. */
function scrubPath(path: string): string {
  return path
    .split('/')
    .map((seg) => {
      const d = decodeFully(seg);
      if (SECRET_VALUE.test(d)) return REDACTED;
      const eq = d.indexOf('=');
      return eq > 0 && isSecretName(d.slice(0, eq)) ? REDACTED : seg;
    })
    .join('/');
}

/** Headers for a log line: credential headers by name, and any value that is an auth scheme, redacted. */
export function scrubHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (isSecretName(name)) out[name] = REDACTED;
    else if (name === 'referer' || name === 'origin' || name === 'location')
      out[name] = typeof value === 'string' ? scrubUrl(value) : REDACTED;
    else if ([value].flat().some((v) => typeof v === 'string' && SECRET_VALUE.test(v))) out[name] = REDACTED;
    else out[name] = value;
  }
  return out;
}
