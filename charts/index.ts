/**
 * The installable construct library (`npm run build:lib` → build/lib, package
 * `@ucm4/orb-constructs`): the `OrbStack` that composes a whole stack from a typed
 * {@link EnvironmentConfig}, every construct it is made of, and the shared contract.
 *
 * @example
 * import { App, Chart } from 'cdk8s';
 * import { OrbStack, type EnvironmentConfig } from '@ucm4/orb-constructs';
 * const app = new App();
 * const chart = new Chart(app, 'orb', { namespace: config.namespace });
 * new OrbStack(chart, 'blue', { config, namePrefix: 'blue-' });
 * app.synth();
 *
 * @packageDocumentation
 */
export * from '../infra';
export { OrbStack, networkGraph, type OrbStackProps, type StackOptions } from './orb-stack';
export { validateEnvironment } from './config';
/** This repo's environments, as starting points to spread (`{ ...prod, name: 'staging', … }`). */
export { dev, prod, ENVIRONMENTS as environments } from './environments';
export type * from './config';
export * as contract from '../services/contract';
