/** Every rule of POLICY.md, in its table's order, plus K1 (schema). */
import type { Rule } from '../types';
import { I1, I2, P1, P2, P3, R1, R2 } from './containers';
import { S1, S10, S11, S2, S3, S4, S5, S6, S7, S9 } from './security';
import { A1, A2, A3, A4, A5, A6, A7 } from './availability';
import { N1, N2, N3, N4 } from './network';
import { B1, K1, M1, M2, M3, M5, M6 } from './meta';

export const RULES: readonly Rule[] = [
  R1, R2, I1, I2, P1, P2, P3,
  S1, S2, S3, S4, S5, S6, S7, S9, S10, S11,
  A1, A2, A3, A4, A5, A6, A7,
  N1, N2, N3, N4,
  M1, M2, M3, M5, M6,
  B1, K1,
];

export { R1, R2, I1, I2, P1, P2, P3, S1, S2, S3, S4, S5, S6, S7, S9, S10, S11, A1, A2, A3, A4, A5, A6, A7, N1, N2, N3, N4, M1, M2, M3, M5, M6, B1, K1 };
