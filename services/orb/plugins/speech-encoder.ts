/**
 * Speech output formats. `wav` and `pcm` are written by services/audio-format; `mp3`, `opus`, `aac` and `flac` go through ffmpeg
 * (Debian's build: libmp3lame, libopus, its native aac and flac), fed PCM16 on stdin as each sentence arrives and
 * read from stdout as it encodes, so the first compressed bytes leave while later sentences are still synthesized.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';

export type SpeechFormat = 'mp3' | 'opus' | 'aac' | 'flac' | 'wav' | 'pcm';
export const SPEECH_FORMATS: readonly SpeechFormat[] = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'];
export type EncodedFormat = Exclude<SpeechFormat, 'wav' | 'pcm'>;

export const SPEECH_CONTENT_TYPES: Readonly<Record<SpeechFormat, string>> = {
  mp3: 'audio/mpeg',
  opus: 'audio/ogg; codecs=opus',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};

/** OpenAI's speech comes at 24 kHz (its `pcm` is 24 kHz PCM16LE): the compressed formats are resampled to it by ffmpeg. */
export const SPEECH_OUTPUT_RATE = 24000;

// Streamable containers only: ADTS for aac, Ogg for opus, a bare MP3/FLAC stream (FLAC's header cannot be patched on a pipe).
const CODEC_ARGS: Readonly<Record<EncodedFormat, readonly string[]>> = {
  mp3: ['-c:a', 'libmp3lame', '-b:a', '64k', '-f', 'mp3'],
  opus: ['-c:a', 'libopus', '-b:a', '32k', '-page_duration', '100000', '-f', 'ogg'],
  aac: ['-c:a', 'aac', '-b:a', '64k', '-f', 'adts'],
  flac: ['-c:a', 'flac', '-f', 'flac'],
};

export function isEncoded(format: SpeechFormat): format is EncodedFormat {
  return format !== 'wav' && format !== 'pcm';
}

/** Why ffmpeg cannot run here (`spawn ffmpeg ENOENT`), or undefined when `ffmpeg -version` works. Checked once per path. */
const probes = new Map<string, Promise<string | undefined>>();
export function ffmpegMissing(path: string): Promise<string | undefined> {
  let p = probes.get(path);
  if (!p) {
    p = new Promise((resolve) => {
      const child = spawn(path, ['-hide_banner', '-version'], { stdio: 'ignore' });
      child.once('error', (err) => resolve(`${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      child.once('exit', (code) => resolve(code === 0 ? undefined : `${path} -version exited with ${code}`));
    });
    probes.set(path, p);
  }
  return p;
}

/** A running ffmpeg waiting for PCM16LE at SPEECH_OUTPUT_RATE on stdin. */
export interface SpeechEncoder {
  /** Feeds `pcm` (24 kHz PCM16LE chunks) in and yields the encoded bytes as ffmpeg produces them. Call once. */
  encode(pcm: AsyncIterable<Buffer>): AsyncGenerator<Buffer>;
  /** Stops ffmpeg (a request that failed before any audio). */
  kill(): void;
}

/**
 * Starts ffmpeg for `format` now, before the first sentence exists: its start-up (~0.2 s of loading libraries)
 * overlaps synthesis instead of delaying the first byte. Input is fixed at 24 kHz so it need not wait for the
 * voice's rate; callers resample (resamplePcm16). The encoded stream ends (or throws, when ffmpeg fails or is
 * killed) once the input is exhausted and ffmpeg has flushed; stopping the iteration early kills ffmpeg.
 */
export function startSpeechEncoder(format: EncodedFormat, ffmpegPath = 'ffmpeg'): SpeechEncoder {
  const child: ChildProcessWithoutNullStreams = spawn(
    ffmpegPath,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      // Raw PCM needs no probing: without these ffmpeg reads seconds of input (or all of it) before it encodes a frame.
      '-probesize',
      '32',
      '-analyzeduration',
      '0',
      '-fflags',
      'nobuffer',
      '-f',
      's16le',
      '-ar',
      String(SPEECH_OUTPUT_RATE),
      '-ac',
      '1',
      '-i',
      'pipe:0',
      ...CODEC_ARGS[format],
      '-flush_packets',
      '1',
      'pipe:1',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  exited.catch(() => undefined);
  // ffmpeg exiting early closes its stdin: a write after that is EPIPE, reported through the exit status instead.
  child.stdin.on('error', () => undefined);
  const gone = () => child.exitCode !== null || child.signalCode !== null || child.stdin.destroyed;
  const kill = () => {
    if (!gone()) child.kill('SIGKILL');
  };

  async function* encode(pcm: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let feedError: unknown;
    const feed = (async () => {
      try {
        for await (const chunk of pcm) {
          // ffmpeg died: stop reading the source (its return() releases the job's events).
          if (gone()) break;
          if (!chunk.length) continue;
          if (!child.stdin.write(chunk)) await Promise.race([once(child.stdin, 'drain'), exited.catch(() => undefined)]);
        }
      } catch (err) {
        feedError = err;
        child.kill('SIGKILL');
      } finally {
        child.stdin.end();
      }
    })();
    try {
      for await (const out of child.stdout) yield out as Buffer;
      const { code, signal } = await exited;
      // A failed ffmpeg is reported now, without waiting for the source to notice.
      if (code !== 0 && !feedError)
        throw new Error(`ffmpeg ${format} ${signal ? `killed by ${signal}` : `exited with ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`);
      await feed;
      if (feedError) throw feedError;
    } finally {
      kill();
    }
  }
  return { encode, kill };
}
