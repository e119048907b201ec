/**
 * The models this deployment serves, as OpenAI's `/v1/models` shows them, built from what the workers announced
 * in the vault (services/acp/models.ts), never from a static list. OpenAI's own model IDs are aliases of the served
 * model of their task, listed only while one is loaded, with `root` naming it.
 */
import type { ModelRegistry, ServedModel } from '../../acp';
import { ORB_ERR_MODEL_NOT_FOUND, ORB_ERR_MODEL_TASK, ORB_ERR_MODEL_UNAVAILABLE, withParam } from './openai-errors';

export type ModelTask = ServedModel['task'];

/** OpenAI model IDs clients send unchanged, and the task each stands for. */
export const OPENAI_MODEL_ALIASES: Readonly<Record<string, ModelTask>> = {
  'whisper-1': 'automatic-speech-recognition',
  'gpt-4o-transcribe': 'automatic-speech-recognition',
  'gpt-4o-mini-transcribe': 'automatic-speech-recognition',
  'tts-1': 'text-to-speech',
  'tts-1-hd': 'text-to-speech',
  'gpt-4o-mini-tts': 'text-to-speech',
};

/** OpenAI's model object plus what a speech client needs to pick a model (speaches lists `task` too). */
export interface OpenAiModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  task: ModelTask;
  /** For an alias: the served model it runs on. */
  root?: string;
  voices?: string[];
  languages?: string[];
}

export class ModelCatalog {
  constructor(private readonly registry: ModelRegistry) {}

  /** Served models (merged across worker replicas, earliest `created`), then the aliases of tasks that have one. */
  async list(): Promise<OpenAiModel[]> {
    const served = new Map<string, OpenAiModel>();
    for (const a of await this.registry.live()) {
      for (const m of a.models) {
        const seen = served.get(m.id);
        if (seen) {
          seen.created = Math.min(seen.created, m.created);
          continue;
        }
        served.set(m.id, {
          id: m.id,
          object: 'model',
          created: m.created,
          owned_by: m.owned_by,
          task: m.task,
          ...(m.voices ? { voices: [...m.voices] } : {}),
          ...(m.languages ? { languages: [...m.languages] } : {}),
        });
      }
    }
    const models = [...served.values()].sort((a, b) => a.id.localeCompare(b.id));
    const aliases: OpenAiModel[] = [];
    for (const [id, task] of Object.entries(OPENAI_MODEL_ALIASES)) {
      const ofTask = models.filter((m) => m.task === task);
      if (!ofTask.length || served.has(id)) continue;
      const voices = ofTask.flatMap((m) => m.voices ?? []);
      aliases.push({
        id,
        object: 'model',
        created: Math.min(...ofTask.map((m) => m.created)),
        owned_by: 'ucm4-orb',
        task,
        root: ofTask[0].id,
        ...(voices.length ? { voices } : {}),
        ...(ofTask[0].languages ? { languages: ofTask[0].languages } : {}),
      });
    }
    return [...models, ...aliases];
  }

  /**
   * The model a request names, checked against `task`: 404 for a name nobody serves, 400 for a model of the other
   * task, 503 when an OpenAI alias is named but no worker of its task has announced a model yet.
   */
  async resolve(id: string, task: ModelTask): Promise<OpenAiModel> {
    const all = await this.list();
    const found = all.find((m) => m.id === id);
    if (found && found.task === task) return found;
    if (found) throw withParam(new ORB_ERR_MODEL_TASK(`'${id}'`, found.task, task), 'model');
    const alias = OPENAI_MODEL_ALIASES[id];
    if (alias === task) throw withParam(new ORB_ERR_MODEL_UNAVAILABLE(task), 'model');
    if (alias) throw withParam(new ORB_ERR_MODEL_TASK(`'${id}'`, alias, task), 'model');
    const names = all.filter((m) => m.task === task).map((m) => m.id);
    return Promise.reject(
      withParam(new ORB_ERR_MODEL_NOT_FOUND(`'${id}' (${task} models here: ${names.join(', ') || 'none loaded'})`), 'model'),
    );
  }
}
