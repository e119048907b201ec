/** Optional free-form synthesis through an OpenAI-compatible `/chat/completions` endpoint. */
import { IdentityView, SessionMemory, Strategy } from './reply';

export interface ChatConfig {
  readonly url: string;
  readonly model: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
}

/** Returns the model's reply, or undefined on any failure (the caller falls back offline). */
export async function chatReply(
  cfg: ChatConfig,
  p: { text: string; strategy: Strategy; label: string; identity: IdentityView; memory: SessionMemory; fallback: string },
): Promise<string | undefined> {
  const system = [
    `You are ${p.identity.name}, version ${p.identity.version}, a concise voice assistant.`,
    `The user's intent was classified as "${p.label}" (strategy ${p.strategy}).`,
    p.memory.name ? `The user's name is ${p.memory.name}.` : '',
    p.memory.facts.length ? `Facts the user asked you to remember: ${p.memory.facts.join('; ')}.` : '',
    `If unsure, answer like: ${p.fallback}`,
  ]
    .filter(Boolean)
    .join(' ');
  try {
    const res = await fetch(`${cfg.url.replace(/\/$/, '')}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}) },
      body: JSON.stringify({
        model: cfg.model,
        temperature: 0,
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: p.text },
        ],
      }),
      signal: AbortSignal.timeout(cfg.timeoutMs),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { choices?: { message?: { content?: string } }[] };
    const text = body.choices?.[0]?.message?.content?.trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}
