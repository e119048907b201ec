/** OrbConfig: ConfigMap `orb-config` — non-secret settings every service reads (via envFrom). */
import { ORB_CONFIG_NAME } from '../services/contract';
import { createHash } from 'node:crypto';
import { Construct } from 'constructs';
import { ORB_ENV } from '../services/config/orb';
import { VAULT_ENV } from '../services/config/vault';
import { componentLabels } from './labels';
import { k8s } from './k8s';

export const ORB_CONFIG: string = ORB_CONFIG_NAME;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface OrbConfigProps {
  /** Environment name (dev, prod...), exposed as ORB_ENVIRONMENT. */
  readonly environment: string;
  /** @default 'info' */
  readonly logLevel?: string;
  /** Prefix of every vault key (isolates tenants sharing one Redis). @default '' */
  readonly keyPrefix?: string;
  /** @default - no version label */
  readonly version?: string;
  /** The ConfigMap's name (a prefixed stack's `<prefix>orb-config`). @default 'orb-config' */
  readonly name?: string;
}

export class OrbConfig extends Construct {
  public readonly configMap: k8s.KubeConfigMap;
  /** Hash of the data: pods carry it so a config change rolls them. */
  public readonly checksum: string;

  constructor(scope: Construct, id: string, props: OrbConfigProps) {
    super(scope, id);
    const logLevel = props.logLevel ?? 'info';
    if (!LOG_LEVELS.includes(logLevel)) throw new Error(`'logLevel' (${logLevel}) must be one of ${LOG_LEVELS.join(', ')}`);
    const keyPrefix = props.keyPrefix ?? '';
    if (!/^[A-Za-z0-9:_.-]*$/.test(keyPrefix)) throw new Error(`'keyPrefix' (${keyPrefix}) may only hold letters, digits and : _ . -`);
    // Names come from the services' schemas, so a renamed variable breaks synth.
    const data: Record<string, string> = {
      [ORB_ENV.logLevel.name]: logLevel,
      [VAULT_ENV.keyPrefix.name]: keyPrefix,
      ORB_ENVIRONMENT: props.environment,
    };
    const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => a.localeCompare(b)));
    this.checksum = createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
    this.configMap = new k8s.KubeConfigMap(this, 'config-map', {
      metadata: {
        name: props.name ?? ORB_CONFIG,
        labels: componentLabels({ name: props.name ?? ORB_CONFIG, component: 'config', version: props.version }),
      },
      data: sorted,
    });
  }
}
