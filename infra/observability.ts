/**
 * Observability: a ServiceMonitor per service (prometheus-operator) or scrape annotations, and the
 * PrometheusRule with the stack's alerts. CRDs are typed with @kubernetes-models/prometheus-operator
 * (schema-checked in tests) and rendered with a plain cdk8s ApiObject.
 */
import { ACP_QUEUES, stackNames, type StackNames } from '../services/contract';
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { componentLabels } from './labels';

/**
 * Service metrics the alerts read (prom-client gauges):
 * - `acp_dlq_size{queue}`: entries in a queue's dead-letter stream (worker runtime);
 * - `acp_consumer_lag{queue}`: XINFO GROUPS lag of a queue's job stream (worker runtime);
 * - `orb_replicas_alive`: heartbeats (`orb:replica:*`) a gateway sees in the vault (orb-core).
 * Core quorum and available replicas come from kube-state-metrics, which Prometheus installs ship.
 */
export const SERVICE_METRICS = ['acp_dlq_size', 'acp_consumer_lag', 'orb_replicas_alive'] as const;

export interface ObservabilityProps {
  readonly namespace: string;
  /** Services to scrape (their `http` port serves /metrics). */
  readonly services: readonly string[];
  /** Verdicts needed: the core-quorum alert fires below it. */
  readonly quorum: number;
  /** Lag (entries) of a speech job stream that pages. @default 50 */
  readonly speechLagThreshold?: number;
  /** Labels Prometheus' ruleSelector / serviceMonitorSelector match. @default { release: 'prometheus' } */
  readonly selectorLabels?: Record<string, string>;
  /** @default '30s' */
  readonly scrapeInterval?: string;
  /** @default - no version label */
  readonly version?: string;
  /** The stack's names (rule and workload names in the alerts). @default - the unprefixed names */
  readonly names?: StackNames;
}

export class Observability extends Construct {
  public readonly serviceMonitors: ServiceMonitor[] = [];
  public readonly rule: PrometheusRule;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const extra = props.selectorLabels ?? { release: 'prometheus' };
    for (const svc of props.services) {
      const sm = new ServiceMonitor({
        metadata: { name: svc, labels: { ...componentLabels({ name: svc, component: 'monitoring', version: props.version }), ...extra } },
        spec: {
          selector: { matchLabels: { app: svc } },
          namespaceSelector: { matchNames: [props.namespace] },
          endpoints: [{ port: 'http', path: '/metrics', interval: props.scrapeInterval ?? '30s' }],
        },
      });
      this.serviceMonitors.push(sm);
      new ApiObject(this, `service-monitor-${svc}`, sm.toJSON() as never);
    }
    const ns = props.namespace;
    const names = props.names ?? stackNames();
    const lag = props.speechLagThreshold ?? 50;
    this.rule = new PrometheusRule({
      metadata: {
        name: `${names.prefix}ucm4-core`,
        labels: { ...componentLabels({ name: `${names.prefix}ucm4-core`, component: 'monitoring', version: props.version }), ...extra },
      },
      spec: {
        groups: [
          {
            name: 'ucm4-core',
            rules: [
              {
                alert: 'OrbCoreQuorumLost',
                expr: `kube_statefulset_status_replicas_ready{namespace="${ns}",statefulset="${names.component.coreQuorum}"} < ${props.quorum}`,
                for: '1m',
                labels: { severity: 'critical' },
                annotations: {
                  summary: 'Fewer than the quorum of verdict cores are ready',
                  description: `${names.component.coreQuorum} has {{ $value }} ready cores; turns need ${props.quorum}. No reply can be produced.`,
                },
              },
              {
                alert: 'OrbDeadLetterGrowing',
                expr: `max by (queue) (delta(acp_dlq_size{namespace="${ns}"}[15m])) > 0`,
                for: '5m',
                labels: { severity: 'warning' },
                annotations: {
                  summary: 'Jobs are being dead-lettered',
                  description:
                    'The dead-letter stream of {{ $labels.queue }} grew by {{ $value }} in 15 minutes: a worker fails the same jobs repeatedly.',
                },
              },
              {
                alert: 'OrbReplicaHeartbeatMissing',
                expr: `max(orb_replicas_alive{namespace="${ns}"}) < min(kube_deployment_status_replicas_available{namespace="${ns}",deployment="${names.component.orbCore}"})`,
                for: '2m',
                labels: { severity: 'warning' },
                annotations: {
                  summary: 'An orb-core replica stopped reporting to the vault',
                  description: 'Fewer heartbeats ({{ $value }}) are in the vault than orb-core replicas are available.',
                },
              },
              {
                alert: 'OrbSpeechQueueLagHigh',
                expr: `max by (queue) (acp_consumer_lag{namespace="${ns}",queue=~"${ACP_QUEUES.whisperx}|${ACP_QUEUES.xtts}"}) > ${lag}`,
                for: '5m',
                labels: { severity: 'warning' },
                annotations: {
                  summary: 'Speech jobs are queueing',
                  description: 'acp:jobs:{{ $labels.queue }} lags by {{ $value }} entries: the speech workers cannot keep up.',
                },
              },
            ],
          },
        ],
      },
    });
    new ApiObject(this, 'prometheus-rule', this.rule.toJSON() as never);
  }
}
