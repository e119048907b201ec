/** The forms in which a client may send a key: query parameters and headers (redaction and log-grep tests). */
/** Every character percent-encoded. */
export const enc = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');

/** Query forms a client (or a confused integration) may use to send a key. */
export const queryForms = (KEY: string): string[] => [
  `?token=${KEY}`, `?TOKEN=${KEY}`, `?Token=${KEY}`, `?api_key=${KEY}`, `?API_KEY=${KEY}`, `?apikey=${KEY}`, `?apiKey=${KEY}`, `?api-key=${KEY}`,
  `?key=${KEY}`, `?Key=${KEY}`, `?access_token=${KEY}`, `?auth=${KEY}`, `?authorization=Bearer%20${KEY}`, `?x-api-key=${KEY}`, `?secret=${KEY}`,
  `?password=${KEY}`, `?ticket=${KEY}`, `?token[]=${KEY}`, `?session=abc&token=${KEY}`, `?speak=true;token=${KEY}`, `?${enc('token')}=${KEY}`,
  `?to%6Ben=${KEY}`, `?%2574oken=${KEY}`, `?api%5Fkey=${KEY}`, `?token=${enc(KEY)}`, `?q=Bearer%20${KEY}`, `?q=bearer+${KEY}`, `?token=${KEY}&token=${KEY}`,
  `?a=1&b=2&token=${KEY}#frag`, `?%74%6f%6b%65%6e=${KEY}`, `?sig=${KEY}`, `?signature=${KEY}`, `?client_secret=${KEY}`, `?credential=${KEY}`,
];

/** Header forms that may carry a key. */
export const headerForms = (KEY: string): Record<string, string>[] => [
  { authorization: `Bearer ${KEY}` }, { authorization: `bearer ${KEY}` }, { authorization: `Basic ${KEY}` }, { authorization: KEY },
  { 'x-api-key': KEY }, { 'api-key': KEY }, { apikey: KEY }, { 'x-auth-token': KEY }, { 'x-access-token': KEY }, { 'proxy-authorization': `Bearer ${KEY}` },
  { cookie: `orb=${KEY}` }, { 'sec-websocket-protocol': `orb, ${KEY}` }, { 'x-orb-key': KEY }, { 'x-forwarded-authorization': `Bearer ${KEY}` },
  { 'x-custom': `Bearer ${KEY}` }, { referer: `https://app.example/?token=${KEY}` }, { 'x-secret': KEY }, { 'x-ticket': KEY },
];

