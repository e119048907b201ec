/**
 * Writes the tiny test models (the same ones the test suite builds for itself) into a directory, so the
 * workers can be started locally or in kind without real weights:
 *   npm run tiny-models -- /tmp/models
 *   MODEL_DIR=/tmp/models/whisper npm run worker whisperx
 *   MODEL_DIR=/tmp/models/voices  npm run worker xtts
 */
import { resolve, join } from 'node:path';
import { writeTinyWhisper, TINY_WHISPER_TRANSCRIPT } from './whisper';
import { writeTinyPiperVoices } from './piper';

const out = resolve(process.argv[2] ?? 'tiny-models');
writeTinyWhisper(join(out, 'whisper'));
writeTinyPiperVoices(join(out, 'voices'));
process.stdout.write(`wrote ${out}/whisper (always transcribes "${TINY_WHISPER_TRANSCRIPT}") and ${out}/voices\n`);
