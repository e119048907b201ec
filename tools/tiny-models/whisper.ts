import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { DT, GraphBuilder } from './onnx-builder';

/**
 * A Whisper model in the Hugging Face optimum ONNX layout (encoder_model.onnx + decoder_model_merged.onnx with
 * the same input/output names as a real export, config.json, generation_config.json, preprocessor_config.json,
 * tokenizer.json/tokenizer_config.json), with one layer, one head, d_model 4 and a 17-token byte-level BPE vocab.
 * Its decoder is a bigram table: greedy decoding after the real prompt always yields TINY_WHISPER_TRANSCRIPT; with
 * timestamps it says `<|0.00|> hello world from the orb <|1.00|>`, i.e. one segment from 0 to 1 s of its window.
 * The task token steers it: after <|translate|> it says `<|0.02|> greetings from the orb <|1.00|>` instead, so a
 * test can tell whether the task really reached the decoder prompt.
 */
export const TINY_WHISPER_TRANSCRIPT = 'hello world from the orb';
export const TINY_WHISPER_TRANSLATION = 'greetings from the orb';

const WORDS = ['hello', 'Ġworld', 'Ġfrom', 'Ġthe', 'Ġorb', '!', 'greetings'];
// Real Whisper has 1501 timestamp tokens (<|0.00|>..<|30.00|>, 20 ms apart) after <|notimestamps|>; 51 suffice here.
const TIMESTAMPS = Array.from({ length: 51 }, (_, i) => `<|${(i * 0.02).toFixed(2)}|>`);
const SPECIALS = [
  '<|endoftext|>',
  '<|startoftranscript|>',
  '<|en|>',
  '<|de|>',
  '<|translate|>',
  '<|transcribe|>',
  '<|startoflm|>',
  '<|startofprev|>',
  '<|nocaptions|>',
  '<|notimestamps|>',
  ...TIMESTAMPS,
];
export const TINY_WHISPER_IDS = Object.fromEntries([...WORDS, ...SPECIALS].map((t, i) => [t, i])) as Record<string, number>;
const V = WORDS.length + SPECIALS.length;
const D = 4;
const N_MELS = 80;

function encoder(): Uint8Array {
  const g = new GraphBuilder('tiny-whisper-encoder');
  const x = g.input('input_features', DT.FLOAT, ['batch_size', N_MELS, 3000]);
  g.output('last_hidden_state', DT.FLOAT, ['batch_size', 1500, D]);
  // Stand-in for conv(stride 2) + transformer: fold frame pairs and project to d_model.
  const t = g.node('Transpose', [x], undefined, [{ name: 'perm', ints: [0, 2, 1] }]);
  const r = g.node('Reshape', [t, g.ints('fold', [3], [0, 1500, 2 * N_MELS])]);
  const w = Array.from({ length: 2 * N_MELS * D }, (_, i) => ((i % 7) - 3) / 100);
  g.node('MatMul', [r, g.floats('proj', [2 * N_MELS, D], w)], ['last_hidden_state']);
  return g.toBytes();
}

function decoderMerged(): Uint8Array {
  const g = new GraphBuilder('tiny-whisper-decoder-merged');
  const ids = g.input('input_ids', DT.INT64, ['batch_size', 'decoder_sequence_length']);
  const enc = g.input('encoder_hidden_states', DT.FLOAT, ['batch_size', 'encoder_sequence_length', D]);
  const pdk = g.input('past_key_values.0.decoder.key', DT.FLOAT, ['batch_size', 1, 'past_decoder_sequence_length', D]);
  const pdv = g.input('past_key_values.0.decoder.value', DT.FLOAT, ['batch_size', 1, 'past_decoder_sequence_length', D]);
  g.input('past_key_values.0.encoder.key', DT.FLOAT, ['batch_size', 1, 'encoder_sequence_length_out', D]);
  g.input('past_key_values.0.encoder.value', DT.FLOAT, ['batch_size', 1, 'encoder_sequence_length_out', D]);
  g.input('use_cache_branch', DT.BOOL, [1]);
  g.output('logits', DT.FLOAT, ['batch_size', 'decoder_sequence_length', V]);
  for (const kind of ['decoder', 'encoder'])
    for (const kv of ['key', 'value']) g.output(`present.0.${kind}.${kv}`, DT.FLOAT, ['batch_size', 1, `present_${kind}_len`, D]);

  const next: Record<string, string> = {
    '<|startoftranscript|>': '<|en|>',
    '<|notimestamps|>': 'hello',
    hello: 'Ġworld',
    Ġworld: 'Ġfrom',
    Ġfrom: 'Ġthe',
    Ġthe: 'Ġorb',
    // Without timestamps <|1.00|> is masked and <|endoftext|> (the runner-up) follows.
    Ġorb: '<|1.00|>',
    '<|transcribe|>': '<|0.00|>',
    '<|0.00|>': 'hello',
    '<|translate|>': '<|0.02|>',
    '<|0.02|>': 'greetings',
    greetings: 'Ġfrom',
    '<|1.00|>': '<|endoftext|>',
  };
  const bigram = new Float32Array(V * V).fill(-10);
  for (let a = 0; a < V; a++) bigram[a * V + TINY_WHISPER_IDS['<|endoftext|>']] = 0;
  for (const [a, b] of Object.entries(next)) bigram[TINY_WHISPER_IDS[a] * V + TINY_WHISPER_IDS[b]] = 10;
  g.node('Gather', [g.floats('bigram', [V, V], bigram), ids], ['logits'], [{ name: 'axis', i: 0 }]);

  const emb = Array.from({ length: V * D }, (_, i) => (i % 5) / 10);
  const kv = g.node('Unsqueeze', [
    g.node('Gather', [g.floats('kv_embed', [V, D], emb), ids], undefined, [{ name: 'axis', i: 0 }]),
    g.ints('ax1', [1], [1]),
  ]);
  g.node('Concat', [pdk, kv], ['present.0.decoder.key'], [{ name: 'axis', i: 2 }]);
  g.node('Concat', [pdv, kv], ['present.0.decoder.value'], [{ name: 'axis', i: 2 }]);
  g.node('Unsqueeze', [enc, 'ax1'], ['present.0.encoder.key']);
  g.node('Unsqueeze', [enc, 'ax1'], ['present.0.encoder.value']);
  return g.toBytes();
}

function tokenizerJson(): object {
  const vocab = Object.fromEntries(WORDS.map((w, i) => [w, i]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((content, k) => ({
      id: WORDS.length + k,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

/** Writes the tiny model into `dir` (created) and returns it. */
export function writeTinyWhisper(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'encoder_model.onnx'), encoder());
  writeFileSync(join(dir, 'decoder_model_merged.onnx'), decoderMerged());
  const id = TINY_WHISPER_IDS;
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify(
      {
        model_type: 'whisper',
        architectures: ['WhisperForConditionalGeneration'],
        d_model: D,
        encoder_layers: 1,
        decoder_layers: 1,
        encoder_attention_heads: 1,
        decoder_attention_heads: 1,
        num_mel_bins: N_MELS,
        max_source_positions: 1500,
        max_target_positions: 448,
        vocab_size: V,
        decoder_start_token_id: id['<|startoftranscript|>'],
        eos_token_id: id['<|endoftext|>'],
        pad_token_id: id['<|endoftext|>'],
      },
      null,
      2,
    ),
  );
  writeFileSync(
    join(dir, 'generation_config.json'),
    JSON.stringify(
      {
        decoder_start_token_id: id['<|startoftranscript|>'],
        eos_token_id: id['<|endoftext|>'],
        pad_token_id: id['<|endoftext|>'],
        no_timestamps_token_id: id['<|notimestamps|>'],
        is_multilingual: true,
        max_length: 448,
        lang_to_id: { '<|en|>': id['<|en|>'], '<|de|>': id['<|de|>'] },
        task_to_id: { transcribe: id['<|transcribe|>'], translate: id['<|translate|>'] },
        suppress_tokens: [id['!']],
        begin_suppress_tokens: [id['<|endoftext|>']],
      },
      null,
      2,
    ),
  );
  writeFileSync(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify(
      {
        feature_extractor_type: 'WhisperFeatureExtractor',
        feature_size: N_MELS,
        hop_length: 160,
        n_fft: 400,
        n_samples: 480000,
        nb_max_frames: 3000,
        sampling_rate: 16000,
        chunk_length: 30,
        padding_value: 0.0,
        return_attention_mask: false,
      },
      null,
      2,
    ),
  );
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'WhisperTokenizer', model_max_length: 1024, clean_up_tokenization_spaces: true, errors: 'replace' }),
  );
  return dir;
}
