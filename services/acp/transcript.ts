/**
 * The segments a `transcript` event carries (whisperx writes them, the gateway's OpenAI routes
 * answer them as `verbose_json` segments and words): one definition for both sides of the bus.
 */
export interface TranscriptWord {
  word: string;
  start: number;
  end: number;
}

export interface TranscriptSegment {
  id: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  avg_logprob: number;
  words: TranscriptWord[];
}
