/** Input audio checks: the pipeline takes PCM16LE, 16 kHz, mono; anything else is a 415, never a guess. */
import { WaveFile } from 'wavefile';
import { ORB_ERR_AUDIO_FORMAT } from './errors';

export const SAMPLE_RATE = 16_000;
export const PCM_CONTENT_TYPE = 'audio/pcm;rate=16000';

/** PCM16LE samples from a WAV file, or ORB_ERR_AUDIO_FORMAT naming what is wrong. */
export function pcmFromWav(buf: Buffer): Buffer {
  const wav = new WaveFile();
  try {
    wav.fromBuffer(buf);
  } catch (err) {
    throw new ORB_ERR_AUDIO_FORMAT(`not a WAV file (${(err as Error).message})`);
  }
  const fmt = wav.fmt as { audioFormat: number; numChannels: number; sampleRate: number; bitsPerSample: number };
  if (fmt.audioFormat !== 1) throw new ORB_ERR_AUDIO_FORMAT(`WAV audio format ${fmt.audioFormat} is not integer PCM`);
  if (fmt.bitsPerSample !== 16) throw new ORB_ERR_AUDIO_FORMAT(`${fmt.bitsPerSample}-bit samples`);
  if (fmt.numChannels !== 1) throw new ORB_ERR_AUDIO_FORMAT(`${fmt.numChannels} channels`);
  if (fmt.sampleRate !== SAMPLE_RATE) throw new ORB_ERR_AUDIO_FORMAT(`sample rate ${fmt.sampleRate} Hz`);
  const data = (wav.data as { samples: Uint8Array }).samples;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Checks an `audio/pcm` (or `audio/l16`) Content-Type's parameters and the body length. */
export function checkRawPcm(contentType: string, buf: Buffer): Buffer {
  const params = new Map(contentType.split(';').slice(1).map((p) => {
    const [k, v = ''] = p.split('=');
    return [k.trim().toLowerCase(), v.trim().toLowerCase()] as const;
  }));
  const rate = params.get('rate');
  if (rate !== undefined && Number(rate) !== SAMPLE_RATE) throw new ORB_ERR_AUDIO_FORMAT(`sample rate ${rate} Hz`);
  const channels = params.get('channels');
  if (channels !== undefined && channels !== '1') throw new ORB_ERR_AUDIO_FORMAT(`${channels} channels`);
  const enc = params.get('encoding');
  if (enc !== undefined && !['pcm16le', 's16le', 'signed-integer'].includes(enc)) throw new ORB_ERR_AUDIO_FORMAT(`encoding ${enc}`);
  checkPcmFrame(buf);
  return buf;
}

/** A PCM16 chunk is whole samples: an odd length means the client is not sending PCM16. */
export function checkPcmFrame(buf: Buffer): void {
  if (buf.length === 0) throw new ORB_ERR_AUDIO_FORMAT('empty audio');
  if (buf.length % 2 !== 0) throw new ORB_ERR_AUDIO_FORMAT(`odd byte length ${buf.length} is not whole 16-bit samples`);
}
