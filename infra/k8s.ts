/**
 * The one place the project touches cdk8s-plus-28: its generated Kubernetes 1.28 L1 classes.
 * plus-28 has had no release since 2024; swapping it for a supported line is a change here only.
 */
export { k8s } from 'cdk8s-plus-28';
