/**
 * Navigation and synthesis: a response strategy per verdict label, session memory extracted
 * from the utterance, and a deterministic reply built from the identity and that memory.
 */
import { createHash } from 'node:crypto';

export interface IdentityView {
  readonly name: string;
  readonly version: string;
}

/** The session's remembered facts (`memory:{sid}` hash). */
export interface SessionMemory {
  name?: string;
  facts: string[];
}

export type Strategy = 'greet' | 'answer' | 'act' | 'remember' | 'recall' | 'chat' | 'farewell' | 'clarify';

/** What the utterance adds to memory: hash fields to set. */
export interface MemoryUpdate {
  readonly fields: Record<string, string>;
  readonly learnedName?: string;
  readonly learnedFact?: string;
}

const NAME_RE =
  /\b(?:my name is|my name's|call me|i'm called|i am called|you can call me|you should know my name is)\s+([\p{L}][\p{L}'-]*)/iu;
const FACT_RE = /\b(?:remember|don't forget|do not forget|keep in mind|note)\s+(?:that\s+)?(.+)$/iu;
const RECALL_NAME_RE = /\b(?:what(?:'s| is| was)? my name|do you (?:know|remember) my name|who am i|did i tell you my name)\b/iu;
const RECALL_ALL_RE =
  /\b(?:what do you (?:know|remember)(?: about me)?|what did i tell you|tell me what you remember|recall what i told you)\b/iu;

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

export function memoryFromHash(h: Record<string, string>): SessionMemory {
  return {
    name: h.name || undefined,
    facts: Object.keys(h)
      .filter((k) => k.startsWith('fact:'))
      .sort()
      .map((k) => h[k]),
  };
}

/** Facts the user asked to be remembered. Same input → same fields (safe on redelivery). */
export function extractMemory(text: string): MemoryUpdate {
  const fields: Record<string, string> = {};
  const t = text.trim().replace(/[.!?]+$/, '');
  const name = NAME_RE.exec(t)?.[1];
  let learnedName: string | undefined;
  if (name && !RECALL_NAME_RE.test(t)) {
    learnedName = capitalize(name);
    fields.name = learnedName;
  }
  let learnedFact: string | undefined;
  const fact = FACT_RE.exec(t)?.[1]?.trim();
  if (fact && !(learnedName && NAME_RE.test(fact))) {
    learnedFact = fact.replace(/^(?:this|it)\s*:\s*/i, '');
    fields[`fact:${createHash('sha1').update(learnedFact.toLowerCase()).digest('hex').slice(0, 12)}`] = learnedFact;
  }
  return { fields, learnedName, learnedFact };
}

/** The response strategy of a verdict (refined by what the utterance asks of memory). */
export function strategyFor(label: string, text: string): Strategy {
  if (RECALL_NAME_RE.test(text) || RECALL_ALL_RE.test(text)) return 'recall';
  switch (label) {
    case 'greeting':
      return 'greet';
    case 'question':
      return 'answer';
    case 'command':
      return 'act';
    case 'memory_request':
      return 'remember';
    case 'smalltalk':
      return 'chat';
    case 'farewell':
      return 'farewell';
    default:
      return 'clarify';
  }
}

/** The offline reply: deterministic in (strategy, text, identity, memory, update). */
export function synthesizeReply(
  strategy: Strategy,
  text: string,
  identity: IdentityView,
  memory: SessionMemory,
  update: MemoryUpdate,
): string {
  const n = memory.name ? `, ${memory.name}` : '';
  const quoted = text.trim().replace(/[.!?]+$/, '');
  switch (strategy) {
    case 'greet':
      return `Hello${n}! I'm ${identity.name}. How can I help?`;
    case 'answer':
      return `Good question${n}. I have no knowledge source connected yet, so I can't answer "${quoted}" reliably.`;
    case 'act':
      return `Okay${n}: "${quoted}". No device integrations are connected yet, so I can't do that myself.`;
    case 'remember':
      if (update.learnedName) return `Nice to meet you, ${update.learnedName}. I'll remember your name.`;
      if (update.learnedFact) return `Got it${n}. I'll remember that ${update.learnedFact}.`;
      return `Tell me what to remember${n}, for example "remember that I like tea".`;
    case 'recall':
      if (RECALL_NAME_RE.test(text)) return memory.name ? `Your name is ${memory.name}.` : `You haven't told me your name yet.`;
      if (!memory.name && !memory.facts.length) return `I don't remember anything about you yet.`;
      return `Here is what I remember${n}: ${[memory.name ? `your name is ${memory.name}` : '', ...memory.facts].filter(Boolean).join('; ')}.`;
    case 'chat':
      return `I'm ${identity.name}, version ${identity.version}, and I'm glad to chat${n}.`;
    case 'farewell':
      return `Goodbye${n}! Talk to you soon.`;
    case 'clarify':
      return `Sorry${n}, I didn't catch that. Could you say it another way?`;
  }
}
