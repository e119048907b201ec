import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { DT, GraphBuilder } from './onnx-builder';

/** Samples the tiny voice produces per phoneme id: output length is exactly ids.length * TINY_PIPER_HOP at length_scale 1 (× length_scale otherwise). */
export const TINY_PIPER_HOP = 256;
export const TINY_PIPER_RATE = 22050;

// Piper's symbol order: pad, bos, eos, space, punctuation, then IPA letters and marks.
const SYMBOLS = [
  '_',
  '^',
  '$',
  ' ',
  ..."!'(),-.:;?",
  ...'abcdefghijklmnopqrstuvwxyz',
  ...'æçðøħŋœǀǁǂǃɐɑɒɓɔɕɖɗɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʲˈˌːˑ˞βθχᵻⱱ',
  '\u0303',
  '\u0329',
  'ʰ',
  'ʷ',
  'ˠ',
  'ˤ',
  '↓',
  '↑',
  '→',
  '↗',
  '↘',
  'ʼ',
  'ʴ',
  'ʱ',
];

export function tinyPhonemeIdMap(): Record<string, number[]> {
  return Object.fromEntries(SYMBOLS.map((s, i) => [s, [i]]));
}

/** A Piper/VITS-layout voice: model.onnx (input, input_lengths, scales -> output [1,1,1,T]) + model.onnx.json. */
function voiceModel(): Uint8Array {
  const V = SYMBOLS.length;
  const g = new GraphBuilder('tiny-piper');
  const input = g.input('input', DT.INT64, [1, 'phonemes']);
  g.input('input_lengths', DT.INT64, [1]);
  const scales = g.input('scales', DT.FLOAT, [3]);
  g.output('output', DT.FLOAT, [1, 1, 1, 'time']);
  // Each id becomes one hop of a tone whose pitch depends on the id: deterministic audio, length N * hop.
  const table = new Float32Array(V * TINY_PIPER_HOP);
  for (let v = 0; v < V; v++)
    for (let n = 0; n < TINY_PIPER_HOP; n++)
      table[v * TINY_PIPER_HOP + n] = v === 0 ? 0 : 0.3 * Math.sin((2 * Math.PI * (100 + 10 * v) * n) / TINY_PIPER_RATE);
  const frames = g.node('Gather', [g.floats('frames', [V, TINY_PIPER_HOP], table), input], undefined, [{ name: 'axis', i: 0 }]);
  const audio = g.node('Reshape', [frames, g.ints('audio_shape', [4], [1, 1, 1, -1])]);
  // Piper's length_scale (scales[1]) stretches time, as the real duration predictor does: speed 2 halves the length.
  const lengthScale = g.node('Slice', [scales, g.ints('ls_start', [1], [1]), g.ints('ls_end', [1], [2]), g.ints('ls_axis', [1], [0])]);
  const resize = g.node('Concat', [g.floats('unit_scales', [3], [1, 1, 1]), lengthScale], undefined, [{ name: 'axis', i: 0 }]);
  g.node('Resize', [audio, '', resize], ['output']);
  return g.toBytes();
}

/** Writes voices in both layouts Piper uses: `<dir>/<name>/model.onnx` and `<dir>/<name>.onnx`. */
export function writeTinyPiperVoices(
  dir: string,
  names: { nested?: string; flat?: string } = { nested: 'tiny-en', flat: 'en_US-tiny-low' },
): string {
  const config = (voice: string) =>
    JSON.stringify(
      {
        audio: { sample_rate: TINY_PIPER_RATE, quality: 'x_low' },
        espeak: { voice },
        inference: { noise_scale: 0.667, length_scale: 1, noise_w: 0.8 },
        phoneme_type: 'espeak',
        phoneme_map: {},
        phoneme_id_map: tinyPhonemeIdMap(),
        num_symbols: SYMBOLS.length,
        num_speakers: 1,
        speaker_id_map: {},
        piper_version: '1.0.0',
      },
      null,
      2,
    );
  const model = voiceModel();
  mkdirSync(dir, { recursive: true });
  if (names.nested) {
    mkdirSync(join(dir, names.nested), { recursive: true });
    writeFileSync(join(dir, names.nested, 'model.onnx'), model);
    writeFileSync(join(dir, names.nested, 'model.onnx.json'), config('en-us'));
  }
  if (names.flat) {
    writeFileSync(join(dir, `${names.flat}.onnx`), model);
    writeFileSync(join(dir, `${names.flat}.onnx.json`), config('en-us'));
  }
  return dir;
}
